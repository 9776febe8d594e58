package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// api talks to Beehive's public HTTP API, as any client does.
type api struct {
	base string // http://host:port
	hc   *http.Client
}

func newAPI(base string, conc int) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conc * 2
	tr.MaxIdleConnsPerHost = conc * 2
	return &api{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// apiError is a non-2xx answer: the protocol's error body, kept by code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("status %d %s: %s", e.Status, e.Code, e.Message)
}

func (a *api) call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &eb)
		return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: undecodable answer: %w", method, path, err)
		}
	}
	return nil
}

// user is one load user with its session; workers get it as JSON.
type user struct {
	ID    string `json:"id"`
	Token string `json:"token"`
	// Email and Password let a --resync worker log in again when its
	// token is refused.
	Email    string `json:"email,omitempty"`
	Password string `json:"password,omitempty"`
}

func (a *api) register(ctx context.Context, nickname, email, password string) (string, error) {
	var reg struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := a.call(ctx, http.MethodPost, "/v1/auth/register", "", map[string]any{
		"nickname": nickname, "email": email, "password": password,
	}, &reg); err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	if reg.User.ID == "" {
		return "", fmt.Errorf("register answered without a user id")
	}
	return reg.User.ID, nil
}

// login starts one session on device.
func (a *api) login(ctx context.Context, email, password, device string) (user, error) {
	var lg struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := a.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]any{
		"email": email, "password": password, "device_id": device,
	}, &lg); err != nil {
		return user{}, fmt.Errorf("login: %w", err)
	}
	if lg.AccessToken == "" || lg.User.ID == "" {
		return user{}, fmt.Errorf("login answered without an access token or user")
	}
	return user{ID: lg.User.ID, Token: lg.AccessToken}, nil
}

// befriend makes a and b friends: a asks, b accepts.
func (a *api) befriend(ctx context.Context, x, y user) error {
	var fr struct {
		FriendRequest struct {
			ID string `json:"id"`
		} `json:"friend_request"`
	}
	if err := a.call(ctx, http.MethodPost, "/v1/friends/requests", x.Token, map[string]any{"user_id": y.ID}, &fr); err != nil {
		return fmt.Errorf("friend request: %w", err)
	}
	if fr.FriendRequest.ID == "" {
		return fmt.Errorf("friend request answered without an id")
	}
	if err := a.call(ctx, http.MethodPost, "/v1/friends/requests/"+fr.FriendRequest.ID+"/accept", y.Token, nil, nil); err != nil {
		return fmt.Errorf("accept friend request: %w", err)
	}
	return nil
}

// maxInvite is how many user ids one group call may name (group.MaxInvite).
const maxInvite = 500

// createGroup makes owner's group holding members, adding them in batches.
func (a *api) createGroup(ctx context.Context, owner user, members []user) (string, error) {
	idsOf := func(us []user) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.ID
		}
		return out
	}
	first := members
	if len(first) > maxInvite {
		first = first[:maxInvite]
	}
	var g struct {
		Group struct {
			ID string `json:"id"`
		} `json:"group"`
	}
	if err := a.call(ctx, http.MethodPost, "/v1/groups", owner.Token, map[string]any{
		"name": "load group", "member_ids": idsOf(first),
	}, &g); err != nil {
		return "", fmt.Errorf("create group: %w", err)
	}
	for rest := members[len(first):]; len(rest) > 0; {
		n := min(len(rest), maxInvite)
		if err := a.call(ctx, http.MethodPost, "/v1/groups/"+g.Group.ID+"/members", owner.Token, map[string]any{
			"user_ids": idsOf(rest[:n]),
		}, nil); err != nil {
			return "", fmt.Errorf("add group members: %w", err)
		}
		rest = rest[n:]
	}
	return g.Group.ID, nil
}

// setupStats is what setting up the users cost.
type setupStats struct {
	Users   int            `json:"users"`
	Seconds float64        `json:"seconds"`
	PerSec  float64        `json:"users_per_second"`
	Errors  map[string]int `json:"errors,omitempty"`
	Sample  string         `json:"error_sample,omitempty"`
}

// makeUsers registers and logs in n users with conc requests in flight.
// Email addresses carry runID so runs against one data dir never collide.
func (a *api) makeUsers(ctx context.Context, n, conc int, runID string) ([]user, setupStats, error) {
	start := time.Now()
	users := make([]user, n)
	st := setupStats{Users: n, Errors: map[string]int{}}
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				email := fmt.Sprintf("load-%s-%d@example.com", runID, i)
				password := "load-password-" + runID
				var u user
				var err error
				// A refused attempt (rate limit, transient) is retried a
				// few times so one 429 does not sink a 19k-user setup;
				// every refusal still counts in the report. A user already
				// registered by an earlier attempt only logs in again.
				registered := false
				for attempt := 0; attempt < 5; attempt++ {
					if !registered {
						_, err = a.register(ctx, fmt.Sprintf("load%d", i), email, password)
						if ae, ok := asAPIError(err); ok && ae.Code == "already_exists" && attempt > 0 {
							err = nil
						}
						registered = err == nil
					}
					if err == nil {
						u, err = a.login(ctx, email, password, "load")
						u.Email, u.Password = email, password
					}
					if err == nil || ctx.Err() != nil {
						break
					}
					mu.Lock()
					st.Errors[errKey(err)]++
					if st.Sample == "" {
						st.Sample = err.Error()
					}
					mu.Unlock()
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				mu.Lock()
				if err == nil {
					users[i] = u
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	st.Seconds = time.Since(start).Seconds()
	st.PerSec = float64(n) / st.Seconds
	for i, u := range users {
		if u.Token == "" {
			return nil, st, fmt.Errorf("user %d could not be set up (%v; first error: %s)", i, st.Errors, st.Sample)
		}
	}
	return users, st, ctx.Err()
}

func asAPIError(err error) (*apiError, bool) {
	for err != nil {
		if ae, ok := err.(*apiError); ok {
			return ae, true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil, false
		}
		err = u.Unwrap()
	}
	return nil, false
}

// errKey buckets an error for the report: the protocol code when the
// server answered, else a coarse class of the network error.
func errKey(err error) string {
	if ae, ok := asAPIError(err); ok {
		if ae.Code != "" {
			return ae.Code
		}
		return fmt.Sprintf("http_%d", ae.Status)
	}
	return netClass(err)
}

func netClass(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "too many open files"):
		return "emfile"
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "connection reset"):
		return "reset"
	case strings.Contains(s, "cannot assign requested address"):
		return "no_ephemeral_port"
	case strings.Contains(s, "timeout"), strings.Contains(s, "deadline exceeded"):
		return "timeout"
	case strings.Contains(s, "EOF"):
		return "eof"
	}
	return "other"
}
