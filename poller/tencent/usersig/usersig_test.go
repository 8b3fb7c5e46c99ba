package usersig_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/schematest/testclock"
)

type vector struct {
	SDKAppID      uint64  `json:"sdkappid"`
	Key           string  `json:"key"`
	Identifier    string  `json:"identifier"`
	Expire        int64   `json:"expire"`
	Time          int64   `json:"time"`
	UserBufBase64 *string `json:"userbuf_base64"`
	UserSig       string  `json:"usersig"`
	DecodedJSON   string  `json:"decoded_json"`
	HMACInput     string  `json:"hmac_input"`
	Note          string  `json:"note"`
}

// loadVectors reads the copy in testdata/, which travels with the package;
// the shared original is only a fallback for a tree that lacks the copy.
func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "usersig_vectors.json"))
	if errors.Is(err, os.ErrNotExist) {
		b, err = os.ReadFile("../../../../shared/testdata/usersig_vectors.json")
	}
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("got %d vectors, want 3", len(vs))
	}
	return vs
}

func (v vector) userbuf(t *testing.T) []byte {
	if v.UserBufBase64 == nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(*v.UserBufBase64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func inflate(t *testing.T, sig string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(sig))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Identifier+"_"+v.Note[:8], func(t *testing.T) {
			ub := v.userbuf(t)
			if got := usersig.HMACInput(v.SDKAppID, v.Identifier, v.Time, v.Expire, ub); got != v.HMACInput {
				t.Errorf("hmac input:\n got %q\nwant %q", got, v.HMACInput)
			}

			doc, err := usersig.Decode(v.UserSig)
			if err != nil {
				t.Fatal(err)
			}
			var want usersig.Doc
			if err := json.Unmarshal([]byte(v.DecodedJSON), &want); err != nil {
				t.Fatal(err)
			}
			if doc.Ver != "2.0" || doc.Identifier != v.Identifier || doc.SDKAppID != v.SDKAppID ||
				doc.Expire != v.Expire || doc.Time != v.Time || !bytes.Equal(doc.UserBuf, ub) || doc.Sig != want.Sig {
				t.Errorf("decoded %+v, want %+v", doc, want)
			}
			if inflated := inflate(t, v.UserSig); inflated != v.DecodedJSON {
				t.Errorf("vector's own decoded_json disagrees with its usersig: %q", inflated)
			}

			got, err := usersig.Generate(v.SDKAppID, v.Identifier, v.Key, v.Expire, time.Unix(v.Time, 0), ub)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.UserSig {
				t.Errorf("Generate is not byte-identical to the official library:\n got %s\nwant %s", got, v.UserSig)
			}
			if inflated := inflate(t, got); inflated != v.DecodedJSON {
				t.Errorf("generated document:\n got %q\nwant %q", inflated, v.DecodedJSON)
			}

			if err := usersig.Verify(v.UserSig, v.Key, v.SDKAppID, v.Identifier, time.Unix(v.Time+v.Expire, 0)); err != nil {
				t.Errorf("Verify at the last valid second: %v", err)
			}
		})
	}
}

func TestVerifySentinels(t *testing.T) {
	v := loadVectors(t)[1]
	at := time.Unix(v.Time+10, 0)
	other, err := usersig.Generate(v.SDKAppID, v.Identifier, "another-key", v.Expire, time.Unix(v.Time, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A token whose fields were altered after signing: same key, but the
	// HMAC no longer covers what the document says.
	doc, _ := usersig.Decode(v.UserSig)
	doc.Expire++
	tampered := encodeDoc(t, doc)

	for _, tc := range []struct {
		name     string
		sig      string
		sdkappid uint64
		id       string
		now      time.Time
		want     error
	}{
		{"ok", v.UserSig, v.SDKAppID, v.Identifier, at, nil},
		{"sdkappid", v.UserSig, v.SDKAppID + 1, v.Identifier, at, usersig.ErrSDKAppIDMismatch},
		// sdkappid is checked before identifier, as the official verifier does.
		{"sdkappid_first", v.UserSig, v.SDKAppID + 1, "someone", at, usersig.ErrSDKAppIDMismatch},
		{"identifier", v.UserSig, v.SDKAppID, "someone", at, usersig.ErrIdentifierMismatch},
		{"identifier_before_expiry", v.UserSig, v.SDKAppID, "someone", time.Unix(v.Time+v.Expire+1, 0), usersig.ErrIdentifierMismatch},
		{"expired", v.UserSig, v.SDKAppID, v.Identifier, time.Unix(v.Time+v.Expire+1, 0), usersig.ErrExpired},
		{"expiry_before_hmac", other, v.SDKAppID, v.Identifier, time.Unix(v.Time+v.Expire+1, 0), usersig.ErrExpired},
		{"other_key", other, v.SDKAppID, v.Identifier, at, usersig.ErrBadSignature},
		{"tampered", tampered, v.SDKAppID, v.Identifier, at, usersig.ErrBadSignature},
		{"garbage", "not a usersig!", v.SDKAppID, v.Identifier, at, usersig.ErrMalformed},
		{"truncated", v.UserSig[:40], v.SDKAppID, v.Identifier, at, usersig.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := usersig.Verify(tc.sig, v.Key, tc.sdkappid, tc.id, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), v.Key) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
}

func encodeDoc(t *testing.T, doc *usersig.Doc) string {
	t.Helper()
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(js)
	zw.Close()
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(z.Bytes()))
}

// TestDecodeOtherLayouts: the Python and Java libraries use other JSON
// layouts and compression levels; the server (and Verify) accept them.
func TestDecodeOtherLayouts(t *testing.T) {
	v := loadVectors(t)[0]
	doc, err := usersig.Decode(v.UserSig)
	if err != nil {
		t.Fatal(err)
	}
	py := `{"TLS.ver": "2.0", "TLS.identifier": "` + doc.Identifier + `", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1700000000, "TLS.sig": "` + doc.Sig + `"}`
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, 6)
	zw.Write([]byte(py))
	zw.Close()
	sig := strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(z.Bytes()))
	if err := usersig.Verify(sig, v.Key, v.SDKAppID, v.Identifier, time.Unix(v.Time, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRejectsQuirks(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name     string
		sdkappid uint64
		id, key  string
		expire   int64
		userbuf  []byte
	}{
		{"expire_zero", 1400000000, "admin", "k", 0, nil},
		{"expire_negative", 1400000000, "admin", "k", -5, nil},
		{"empty_identifier", 1400000000, "", "k", 60, nil},
		{"identifier_33_bytes", 1400000000, strings.Repeat("a", 33), "k", 60, nil},
		{"identifier_space", 1400000000, "ad min", "k", 60, nil},
		{"identifier_newline", 1400000000, "admin\n", "k", 60, nil},
		{"identifier_non_ascii", 1400000000, "ädmin", "k", 60, nil},
		{"identifier_control", 1400000000, "ad\x7fmin", "k", 60, nil},
		{"empty_userbuf", 1400000000, "admin", "k", 60, []byte{}},
		{"zero_sdkappid", 0, "admin", "k", 60, nil},
		{"empty_key", 1400000000, "admin", "", 60, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := usersig.Generate(tc.sdkappid, tc.id, tc.key, tc.expire, now, tc.userbuf)
			if err == nil {
				t.Fatalf("Generate accepted it: %s", sig)
			}
		})
	}
	// 32 bytes of the full printable range is fine.
	id := "a~!#$%&'()*+,-./0123456789:;<=>?"
	if len(id) != 32 {
		t.Fatal(len(id))
	}
	sig, err := usersig.Generate(1400000000, id, "k", 60, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := usersig.Verify(sig, "k", 1400000000, id, now); err != nil {
		t.Fatal(err)
	}
}

func TestNoKeyInErrors(t *testing.T) {
	const key = "super-secret-key-5bd2850fff3ecb11"
	_, err := usersig.Generate(1400000000, "", key, 60, time.Unix(0, 0), nil)
	if err == nil || strings.Contains(err.Error(), key) {
		t.Fatalf("err = %v", err)
	}
	_, err = usersig.NewSigner(usersig.SignerOptions{SDKAppID: 1400000000, Identifier: "bad id", Key: key})
	if err == nil || strings.Contains(err.Error(), key) {
		t.Fatalf("err = %v", err)
	}
}

func TestSignerCachesAndRefreshes(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	var reasons []string
	s, err := usersig.NewSigner(usersig.SignerOptions{
		SDKAppID: 1400000000, Identifier: "administrator", Key: "k",
		Expire: 10 * time.Hour, Now: clk.Now,
		OnRefresh: func(r string) { reasons = append(reasons, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.UserSig()
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := usersig.Decode(first)
	if doc.Expire != 36000 || doc.Time != 1700000000 {
		t.Fatalf("doc %+v", doc)
	}
	if err := usersig.Verify(first, "k", 1400000000, "administrator", clk.Now()); err != nil {
		t.Fatal(err)
	}

	// Up to 80% of the life, the same usersig comes back.
	clk.Add(8*time.Hour - time.Second)
	if got, _ := s.UserSig(); got != first {
		t.Fatal("re-minted before 80% of the life")
	}
	// At 80%, a fresh one, well before the old one expires.
	clk.Add(time.Second)
	second, _ := s.UserSig()
	if second == first {
		t.Fatal("not re-minted at 80% of the life")
	}
	if doc, _ := usersig.Decode(second); doc.Time != 1700000000+8*3600 {
		t.Fatalf("new usersig time %d", doc.Time)
	}
	if got, _ := s.UserSig(); got != second {
		t.Fatal("second usersig not cached")
	}

	// Invalidate forces a new one even though it is still fresh.
	clk.Add(time.Second)
	s.Invalidate()
	third, _ := s.UserSig()
	if third == second {
		t.Fatal("not re-minted after Invalidate")
	}
	if got, _ := s.UserSig(); got != third {
		t.Fatal("third usersig not cached")
	}
	want := []string{usersig.ReasonInitial, usersig.ReasonExpiry, usersig.ReasonInvalidated}
	if strings.Join(reasons, ",") != strings.Join(want, ",") {
		t.Fatalf("refresh reasons %v, want %v", reasons, want)
	}
}

func TestSignerOptions(t *testing.T) {
	if _, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: 1, Identifier: "a", Key: "k", Expire: 59 * time.Minute}); err == nil {
		t.Error("accepted an expiry under an hour")
	}
	s, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: 1, Identifier: "a", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s.UserSig()
	if doc, _ := usersig.Decode(sig); doc.Expire != 7*86400 {
		t.Errorf("default expire %d, want 7 days", doc.Expire)
	}
}

func TestSignerConcurrent(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	s, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: 1, Identifier: "a", Key: "k", Expire: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if j%50 == 0 {
					s.Invalidate()
					clk.Add(time.Minute)
				}
				sig, err := s.UserSig()
				if err != nil {
					t.Error(err)
					return
				}
				if err := usersig.Verify(sig, "k", 1, "a", clk.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestStatic(t *testing.T) {
	var src usersig.Source = usersig.Static("abc")
	src.Invalidate()
	if got, err := src.UserSig(); got != "abc" || err != nil {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := usersig.Static("").UserSig(); err == nil {
		t.Fatal("empty static usersig accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range []string{
		"eAEArwBQ-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVyIjoiYWRtaW5pc3RyYXRvciIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLmV4cGlyZSI6ODY0MDAsIlRMUy50aW1lIjoxNzAwMDAwMDAwLCJUTFMuc2lnIjoieUxBZSt3N1dVZVV1cWJWOWgvVFg3OHUyMW9UR2kraTlacDF1M1Bwblk2MD0ifQoBAAD---AkM5w_",
		"", "eAE_", "*-_", "eJwDAAAAAAE_",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := usersig.Decode(s)
		if err != nil {
			if !errors.Is(err, usersig.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if doc.Sig == "" {
			t.Fatal("decoded without a sig")
		}
		_ = usersig.Verify(s, "k", doc.SDKAppID, doc.Identifier, time.Unix(doc.Time, 0))
	})
}
