package groupid_test

import (
	"fmt"

	"github.com/rollcall-dev/rollcall/schema/groupid"
)

func Example() {
	id := "@TGS#a.room/1"
	fmt.Println(groupid.Validate(id))
	fmt.Println(groupid.PathSegment(id))
	fmt.Println(groupid.Token(id))
	fmt.Println(groupid.FileName(id, ".json"))
	fmt.Println(groupid.Validate("a-very-long-custom-group-id-that-tencent-would-refuse"))
	// Output:
	// <nil>
	// @TGS%23a.room%2F1
	// %40TGS%23a%2Eroom%2F1
	// 81a4ekp3c4n74rrfdknj2.json <nil>
	// group id is 53 bytes, longer than Tencent's limit of 48
}
