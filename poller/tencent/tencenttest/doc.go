// Package tencenttest is a fake of the Tencent Cloud Chat REST API, in the
// spirit of net/http/httptest. It serves
//
//	/v4/group_open_avchatroom_http_svc/get_members
//	/v4/group_open_avchatroom_http_svc/check_members
//	/v4/group_open_http_svc/get_online_member_num
//
// and checks what the real server checks: POST only, the sdkappid,
// identifier, usersig, random and contenttype query parameters (the usersig
// is verified with the real TLSSigAPIv2 algorithm against the server's
// clock), the JSON body, group existence and cursors. It reproduces the
// behaviour the poller has to survive: paging with opaque 64-bit cursors,
// the latest-N member cap (1000, or 30 for apps without the online-member
// list feature), Mark filters, dismissed groups, an app-wide rate limit and
// injectable faults (502 pages, error codes, truncated JSON, slow answers,
// hang-ups, malformed members).
//
// Every answer is HTTP 200 with ActionStatus, ErrorCode and ErrorInfo, as on
// the real API, except for the injected transport faults. Choices where the
// real behaviour is not documented:
//
//   - A method other than POST answers ErrorCode 60002 (HTTP parse error)
//     with HTTP 200, not HTTP 405: the API reports request errors in the
//     body, and a client that sees a non-200 status treats it as transient.
//   - An unknown command under a known service path
//     (/v4/group_open_avchatroom_http_svc/ or /v4/group_open_http_svc/)
//     answers 10003 (wrong command); any other path answers 60009 (bad
//     request resource).
//   - Checks run in this order: method, path, sdkappid (missing 60012,
//     not a number 60006, another app 70020), contenttype and random (60002),
//     rate limit (60007), usersig (70001/70003/70009/70013/70014),
//     administrator rights (60010), body (60003), injected faults, then the
//     command's own checks (10004, 10015, 10010).
//   - A Mark filter is applied before the member cap: the cap limits what a
//     single answer can list, and the docs count marked members separately
//     from the 1000-online cap.
//
// The server never logs a usersig; Request keeps the raw query for test
// assertions, and Request.RedactedQuery is the form safe to print.
package tencenttest
