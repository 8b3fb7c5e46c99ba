// Command rollcall turns Tencent Cloud Chat's audio-video group member
// lists into a change feed: it polls get_members, diffs each snapshot with
// the previous one and publishes member-joined/left CloudEvents to stdout,
// files, Kafka or NATS.
//
// main stays thin: it hands the arguments to Main and exits with its code,
// in one place.
package main

import (
	"os"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
