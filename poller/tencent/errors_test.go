package tencent

import "testing"

// TestAPIErrorMessage: the message names the command, the code, what
// Tencent said and the likely cause, each once.
func TestAPIErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  APIError
		want string
	}{
		{APIError{Command: "get_members", HTTPStatus: 200, Code: 70009, Info: "usersig verification failed"},
			"get_members: error 70009: usersig verification failed: the secret key is probably wrong"},
		{APIError{Command: "get_members", HTTPStatus: 200, Code: 60010, Info: "need admin"},
			"get_members: error 60010: need admin (tencent.identifier is not an app admin)"},
		{APIError{Command: "get_members", HTTPStatus: 200, Code: 10007},
			"get_members: error 10007: no permission: tencent.identifier is not an app admin, or the group is not an AVChatRoom"},
		{APIError{Command: "get_members", HTTPStatus: 200, Code: 10002, Info: "internal error"},
			"get_members: error 10002: internal error"},
		{APIError{Command: "get_members", HTTPStatus: 502, Info: "Bad Gateway"},
			"get_members: http status 502: Bad Gateway"},
		{APIError{Command: "get_members", HTTPStatus: 200, Info: "no ActionStatus"},
			"get_members: invalid response: no ActionStatus"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q\n want %q", got, tc.want)
		}
	}
}
