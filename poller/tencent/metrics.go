package tencent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Commands the client calls; they are the command label of its metrics.
const (
	cmdGetMembers      = "get_members"
	cmdOnlineMemberNum = "get_online_member_num"
	cmdCheckMembers    = "check_members"
	cmdGroupInfo       = "get_group_info"
	cmdAppGroupList    = "get_appid_group_list"
)

// Metrics are the client's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	// Calls counts HTTP attempts by command and outcome: "0" on success,
	// Tencent's ErrorCode, "http_<status>", "transport" or
	// "invalid_response".
	Calls *prometheus.CounterVec
	// Duration is the latency of each HTTP attempt by command.
	Duration *prometheus.HistogramVec
	// RateLimitWait is the time calls spent waiting on the app-wide token
	// bucket (including a 70050 cool-down).
	RateLimitWait prometheus.Histogram
	// UserSigRefreshes counts usersigs minted, by reason. The client does
	// not mint; wire UserSigRefreshed into usersig.SignerOptions.OnRefresh.
	UserSigRefreshes *prometheus.CounterVec
}

// NewMetrics creates the client's metrics and registers them with reg
// (nil: not registered, e.g. for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Calls: promdef.CounterVec("rollcall_api_calls_total",
			"Tencent Chat REST API calls (HTTP attempts) by command and result code.",
			"command", "code"),
		Duration: promdef.HistogramVec("rollcall_api_call_duration_seconds",
			"Latency of Tencent Chat REST API calls (HTTP attempts).",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "command"),
		RateLimitWait: promdef.Histogram("rollcall_ratelimit_wait_seconds",
			"Time API calls waited on the app-wide rate limiter.",
			[]float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 60}),
		UserSigRefreshes: promdef.CounterVec("rollcall_usersig_refreshes_total",
			"UserSigs minted, by reason (initial, expiry, invalidated).", "reason"),
	}
	for _, c := range []string{cmdGetMembers, cmdOnlineMemberNum, cmdCheckMembers, cmdGroupInfo} {
		m.Calls.WithLabelValues(c, "0")
		m.Duration.WithLabelValues(c)
	}
	for _, r := range []string{usersig.ReasonInitial, usersig.ReasonExpiry, usersig.ReasonInvalidated} {
		m.UserSigRefreshes.WithLabelValues(r)
	}
	promdef.Register(reg, m.Calls, m.Duration, m.RateLimitWait, m.UserSigRefreshes)
	return m
}

// UserSigRefreshed counts one minted usersig. Its signature fits
// usersig.SignerOptions.OnRefresh.
func (m *Metrics) UserSigRefreshed(reason string) {
	if m == nil {
		return
	}
	m.UserSigRefreshes.WithLabelValues(reason).Inc()
}

func (m *Metrics) call(command, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.Calls.WithLabelValues(command, code).Inc()
	m.Duration.WithLabelValues(command).Observe(d.Seconds())
}

func (m *Metrics) waited(d time.Duration) {
	if m == nil {
		return
	}
	m.RateLimitWait.Observe(d.Seconds())
}
