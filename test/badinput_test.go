package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNoClientInputGetsA5xxOrANonJSONError throws malformed bodies, wrong
// types, absurd numbers, bad ids and bad tokens at every public route: each
// answer must be a coded JSON error (or success), never a 5xx, and the
// process must stay up.
func TestNoClientInputGetsA5xxOrANonJSONError(t *testing.T) {
	p := startDev(t, "")
	alice, bob := NewUser(t, p, "alice"), NewUser(t, p, "bob")
	g := alice.Must(201, "POST", "/v1/groups", map[string]any{"name": "g", "member_ids": []string{bob.ID}})
	gid := str(g, "group", "id")
	c := conv(alice, bob)
	routes := [][2]string{
		{"POST", "/v1/auth/register"}, {"POST", "/v1/auth/login"}, {"POST", "/v1/auth/refresh"},
		{"POST", "/v1/auth/logout?all=maybe"}, {"PUT", "/v1/auth/password"}, {"PUT", "/v1/devices/d1"},
		{"DELETE", "/v1/devices/" + strings.Repeat("d", 100)}, {"GET", "/v1/users/me"}, {"PATCH", "/v1/users/me"},
		{"GET", "/v1/users/" + strings.Repeat("x", 300)}, {"POST", "/v1/friends/requests"}, {"GET", "/v1/friends/requests"},
		{"POST", "/v1/friends/requests/zz/accept"}, {"POST", "/v1/friends/requests/zz/decline"},
		{"GET", "/v1/friends?limit=-5&cursor=@@"}, {"DELETE", "/v1/friends/" + bob.ID}, {"PUT", "/v1/blocks/" + alice.ID},
		{"DELETE", "/v1/blocks/!!"}, {"GET", "/v1/blocks?limit=abc"}, {"POST", "/v1/groups"}, {"GET", "/v1/groups/" + gid},
		{"PATCH", "/v1/groups/" + gid}, {"DELETE", "/v1/groups/nope"}, {"GET", "/v1/groups/" + gid + "/members?limit=99999&cursor=%00"},
		{"POST", "/v1/groups/" + gid + "/members"}, {"DELETE", "/v1/groups/" + gid + "/members/zz"},
		{"PUT", "/v1/groups/" + gid + "/members/" + bob.ID + "/role"}, {"POST", "/v1/groups/" + gid + "/transfer"},
		{"PUT", "/v1/groups/" + gid + "/members/" + bob.ID + "/mute"}, {"PUT", "/v1/groups/" + gid + "/mute"},
		{"GET", "/v1/groups?limit=0"}, {"POST", "/v1/messages"}, {"POST", "/v1/messages/zz/recall"},
		{"GET", "/v1/conversations?limit=1e9"}, {"GET", "/v1/conversations/" + c}, {"PUT", "/v1/conversations/" + c + "/settings"},
		{"GET", "/v1/conversations/" + c + "/messages?before_seq=-1&after_seq=x"}, {"POST", "/v1/conversations/" + c + "/read"},
		{"GET", "/v1/conversations/g:%2F..%2F/messages"}, {"GET", "/v1/presence?user_ids=" + strings.Repeat("x,", 300)},
	}
	bodies := []string{
		"", "{", "[]", "null", "123", `"str"`, `{"a":1}`,
		`{"seq":-1,"seconds":-5,"muted":"yes","role":"god","user_id":123,"user_ids":[1,2],"name":"` + strings.Repeat("x", 5000) + `"}`,
		`{"to_user_id":"` + bob.ID + `","client_msg_id":"c","type":"text","content":{"x":1}}`,
		`{"group_id":"` + gid + `","client_msg_id":"` + strings.Repeat("c", 100) + `","type":"image","content":"s","mentions":["all",5]}`,
		`{"email":"\ud800@x","password":1e400,"nickname":"\u0000"}`,
		`{"seq":92233720368547758070,"seconds":1e30,"platform":"apns","push_token":""}`,
		`{"refresh_token":"a.b.c"}`, `{"old_password":"x","new_password":"p"}`,
	}
	for _, r := range routes {
		for _, body := range bodies {
			for _, tok := range []string{alice.Token, "", "garbage.token.here"} {
				req, _ := http.NewRequest(r[0], p.URL(r[1]), bytes.NewBufferString(body))
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", r[0], r[1], err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Errorf("%s %s %q: %d %s", r[0], r[1], body, resp.StatusCode, raw)
					continue
				}
				if resp.StatusCode >= 400 {
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
						t.Errorf("%s %s %q: %d without a coded JSON error: %s", r[0], r[1], body, resp.StatusCode, raw)
					}
				}
			}
		}
	}
	p.WaitReady(wait)
}
