// Package groupidtest holds the group id spellings tests pin: the NATS
// subject token is groupid.Token, so the groupid tests and the NATS sink's
// tests check the one table.
package groupidtest

// Tokens are group ids and their groupid.Token. The empty id gives the
// empty token.
var Tokens = []struct{ ID, Token string }{
	{"room1", "room1"},
	{"Room_1-a", "Room_1-a"},
	{"@TGS#aRoom", "%40TGS%23aRoom"},
	{"a.b", "a%2Eb"},
	{"a*", "a%2A"},
	{">", "%3E"},
	{"two words", "two%20words"},
	{"50%", "50%25"},
	{"tab\there", "tab%09here"},
	{"直播", "%E7%9B%B4%E6%92%AD"},
	{"a/b\\c", "a%2Fb%5Cc"},
	{"", ""},
}
