package tencenttest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

func ExampleNewServer() {
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	s := tencenttest.NewServer(tencenttest.Options{Now: now})
	defer s.Close()
	s.AddGroup("@TGS#live", schema.Member{Account: "alice", NickName: "Alice", JoinTime: 1_699_999_000})

	sig, err := s.UserSig(tencenttest.DefaultAdmin)
	if err != nil {
		panic(err)
	}
	q := url.Values{
		"sdkappid":    {strconv.FormatUint(s.SDKAppID(), 10)},
		"identifier":  {tencenttest.DefaultAdmin},
		"usersig":     {sig},
		"random":      {"12345"},
		"contenttype": {"json"},
	}
	resp, err := s.Client().Post(s.URL+tencenttest.PathGetMembers+"?"+q.Encode(), "application/json",
		strings.NewReader(`{"GroupId":"@TGS#live","Timestamp":0}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode == http.StatusOK)
	fmt.Println(string(body))
	// Output:
	// true
	// {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","MemberList":[{"JoinTime":1699999000,"Member_Account":"alice","NickName":"Alice","Avatar":""}],"NextTimestamp":0}
}
