package tencenttest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// BenchmarkListGroup lists a 2,500-member group (capped at 1000, four
// pages of 250) through ServeHTTP, usersig verification included.
func BenchmarkListGroup(b *testing.B) {
	s := tencenttest.NewHandler(tencenttest.Options{Now: newClock().Now})
	s.AddGroup("g1", members(2500)...)
	sig, err := s.UserSig(tencenttest.DefaultAdmin)
	if err != nil {
		b.Fatal(err)
	}
	target := fmt.Sprintf("%s?sdkappid=%d&identifier=%s&usersig=%s&random=1&contenttype=json",
		tencenttest.PathGetMembers, s.SDKAppID(), tencenttest.DefaultAdmin, sig)
	b.ReportAllocs()
	for b.Loop() {
		var next uint64
		for {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, target, strings.NewReader(fmt.Sprintf(`{"GroupId":"g1","Timestamp":%d}`, next))))
			var r struct {
				ErrorCode     int
				NextTimestamp uint64
			}
			if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.ErrorCode != 0 {
				b.Fatalf("%v %s", err, w.Body)
			}
			if next = r.NextTimestamp; next == 0 {
				break
			}
		}
	}
}
