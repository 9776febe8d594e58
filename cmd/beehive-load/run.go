package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// child is one worker process.
type child struct {
	id    int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	mu    sync.Mutex
}

func (c *child) send(cmd command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.enc.Encode(cmd)
}

// fleet is the running workers and their merged event stream.
type fleet struct {
	children []*child
	events   chan event
	readers  sync.WaitGroup
}

func startFleet(assigns []assignment) (*fleet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f := &fleet{events: make(chan event, 4*len(assigns)+16)}
	for _, a := range assigns {
		cmd := exec.Command(exe, "worker")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			f.kill()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			f.kill()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			f.kill()
			return nil, fmt.Errorf("starting worker %d: %w", a.Worker, err)
		}
		c := &child{id: a.Worker, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin)}
		f.children = append(f.children, c)
		f.readers.Add(1)
		go func() {
			defer f.readers.Done()
			sc := bufio.NewScanner(stdout)
			// A result line carries histograms and per-message maps.
			sc.Buffer(make([]byte, 1<<20), 256<<20)
			for sc.Scan() {
				var e event
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					f.events <- event{Event: "fatal", Worker: c.id, Error: "undecodable worker output: " + err.Error()}
					continue
				}
				f.events <- e
			}
			f.events <- event{Event: "exit", Worker: c.id}
		}()
		raw, err := json.Marshal(a)
		if err != nil {
			f.kill()
			return nil, err
		}
		if _, err := stdin.Write(append(raw, '\n')); err != nil {
			f.kill()
			return nil, fmt.Errorf("assigning worker %d: %w", a.Worker, err)
		}
	}
	return f, nil
}

func (f *fleet) broadcast(c command) {
	for _, ch := range f.children {
		ch.send(c)
	}
}

// collect waits for one event named name from every worker, failing on a
// fatal event, a worker that exits first, ctx or timeout.
func (f *fleet) collect(ctx context.Context, name string, timeout time.Duration) (map[int]event, error) {
	got := map[int]event{}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(got) < len(f.children) {
		select {
		case e := <-f.events:
			switch e.Event {
			case name:
				got[e.Worker] = e
			case "fatal":
				return got, fmt.Errorf("worker %d: %s", e.Worker, e.Error)
			case "exit":
				if _, ok := got[e.Worker]; !ok {
					return got, fmt.Errorf("worker %d exited before %q", e.Worker, name)
				}
			}
		case <-timer.C:
			return got, fmt.Errorf("%d of %d workers sent %q within %s", len(got), len(f.children), name, timeout)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
	return got, nil
}

// await waits for one event named name from worker id.
func (f *fleet) await(ctx context.Context, id int, name string, timeout time.Duration) (event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e := <-f.events:
			if e.Worker != id {
				if e.Event == "fatal" {
					return e, fmt.Errorf("worker %d: %s", e.Worker, e.Error)
				}
				continue
			}
			switch e.Event {
			case name:
				return e, nil
			case "fatal":
				return e, fmt.Errorf("worker %d: %s", e.Worker, e.Error)
			case "exit":
				return e, fmt.Errorf("worker %d exited before %q", e.Worker, name)
			}
		case <-timer.C:
			return event{}, fmt.Errorf("worker %d sent no %q within %s", id, name, timeout)
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

// close ends the workers (stdin EOF lets them finish) and returns the CPU
// time they used.
func (f *fleet) close() float64 {
	for _, c := range f.children {
		c.send(command{Cmd: "stop"})
		_ = c.stdin.Close()
	}
	done := make(chan struct{})
	go func() {
		for _, c := range f.children {
			_ = c.cmd.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		f.kill()
		<-done
	}
	var cpu float64
	for _, c := range f.children {
		if ps := c.cmd.ProcessState; ps != nil {
			cpu += (ps.UserTime() + ps.SystemTime()).Seconds()
		}
	}
	return cpu
}

func (f *fleet) kill() {
	for _, c := range f.children {
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Kill()
		}
	}
}

// split divides n items into k contiguous shares, sizes differing by <= 1.
func split(n, k int) [][2]int {
	out := make([][2]int, 0, k)
	lo := 0
	for i := 0; i < k; i++ {
		size := n / k
		if i < n%k {
			size++
		}
		out = append(out, [2]int{lo, lo + size})
		lo += size
	}
	return out
}

func runScenario(ctx context.Context, o options, rep *report, logf func(string, ...any)) error {
	a := newAPI(o.Addr, o.SetupConc)
	nUsers := map[string]int{"sockets": o.Users, "chat": 2 * o.Pairs, "group": o.Members + o.Senders}[o.Scenario]
	logf("setting up %d users on %s (%s, %d cpus, load %s)", nUsers, o.Addr, rep.Machine.CPUModel, rep.Machine.NumCPU, rep.Machine.LoadAvg)
	users, st, err := a.makeUsers(ctx, nUsers, o.SetupConc, o.RunID)
	rep.Setup = st
	if err != nil {
		return err
	}
	logf("setup: %d users in %.1fs (%.0f/s)", st.Users, st.Seconds, st.PerSec)

	wsURL := "ws" + strings.TrimPrefix(o.Addr, "http") + "/v1/ws"
	base := assignment{Scenario: o.Scenario, WSURL: wsURL, DialConcurrency: o.DialConc, BufferSize: o.BufferSize,
		Rate: o.Rate, Duration: o.Duration, Drain: o.Drain, Pad: o.Pad, Resync: o.Resync, HTTPAddr: o.Addr}
	var assigns []assignment
	switch o.Scenario {
	case "sockets":
		specs := make([]sockSpec, o.Sockets)
		for i := range specs {
			specs[i] = sockSpec{User: users[i%o.Users], Device: fmt.Sprintf("load-%d", i/o.Users)}
		}
		for w, r := range split(len(specs), o.Workers) {
			as := base
			as.Worker, as.Sockets = w, specs[r[0]:r[1]]
			assigns = append(assigns, as)
		}
	case "chat":
		pairs := make([]pair, o.Pairs)
		for i := range pairs {
			pairs[i] = pair{A: users[2*i], B: users[2*i+1]}
		}
		if o.Friends {
			if err := befriendAll(ctx, a, pairs, o.SetupConc); err != nil {
				return err
			}
			logf("setup: %d pairs are friends", len(pairs))
		}
		for w, r := range split(len(pairs), o.Workers) {
			if r[1] == r[0] {
				continue
			}
			as := base
			as.Worker, as.Pairs = w, pairs[r[0]:r[1]]
			as.Rate = o.Rate * float64(r[1]-r[0]) / float64(len(pairs))
			assigns = append(assigns, as)
		}
	case "group":
		gid, err := a.createGroup(ctx, users[0], users[1:])
		if err != nil {
			return err
		}
		logf("setup: group %s with %d senders and %d members besides", gid, o.Senders, o.Members)
		members := users[o.Senders:]
		for w, r := range split(o.Members, o.Workers) {
			as := base
			as.Worker, as.GroupID, as.Members = w, gid, members[r[0]:r[1]]
			if w == 0 {
				as.Senders = users[:o.Senders]
			}
			assigns = append(assigns, as)
		}
	}

	sample := func() serverSample { return sampleServer(ctx, o.ServerPID, o.MetricsURL) }
	srv := &serverReport{PID: o.ServerPID}
	rep.Server = srv
	srv.Before = sample()

	logf("starting %d worker(s)", len(assigns))
	t0 := time.Now()
	fl, err := startFleet(assigns)
	if err != nil {
		return err
	}
	defer fl.kill()
	ready, err := fl.collect(ctx, "ready", o.ConnectTO)
	connectWall := time.Since(t0)
	results := map[int]*workerResult{}
	for id, e := range ready {
		results[id] = e.Result
	}
	rep.mergeConnect(results, connectWall)
	logf("connected %d of %d sockets in %.1fs (%.0f/s)", rep.Connect.Connected, rep.Connect.Requested, rep.Connect.WallSeconds, rep.Connect.PerSecond)
	if err != nil {
		rep.ClientCPUSeconds = fl.close()
		return fmt.Errorf("connecting: %w", err)
	}

	switch o.Scenario {
	case "sockets":
		sleepCtx(ctx, o.Settle)
		srv.After = sample()
		if o.Hold > 0 {
			logf("holding %d sockets for %s", rep.Connect.Connected, o.Hold)
			sleepCtx(ctx, o.Hold)
			s := sample()
			srv.AfterHold = &s
		}
		fl.broadcast(command{Cmd: "stop"})
		res, err := fl.collect(ctx, "result", time.Minute)
		rep.mergeResults(res)
		rep.ClientCPUSeconds = fl.close()
		rep.finishSockets(o)
		return err
	case "chat":
		start := time.Now().Add(500 * time.Millisecond)
		logf("chat: %d pairs, %.0f msgs/s for %s", o.Pairs, o.Rate, o.Duration)
		fl.broadcast(command{Cmd: "start", At: start})
		wait := time.Until(start) + o.Duration + o.Drain + time.Minute
		if o.Resync {
			wait += finalSyncMax // the final sync of every device
		}
		res, err := fl.collect(ctx, "result", wait)
		srv.After = sample()
		rep.mergeResults(res)
		rep.ClientCPUSeconds = fl.close()
		rep.finishMessages(o)
		return err
	case "group":
		start := time.Now().Add(500 * time.Millisecond)
		logf("group: %d sender(s), %d members, %.1f msgs/s for %s", o.Senders, o.Members, o.Rate, o.Duration)
		fl.broadcast(command{Cmd: "start", At: start})
		done, err := fl.await(ctx, 0, "sender_done", time.Until(start)+o.Duration+o.Drain+time.Minute)
		if err != nil {
			rep.ClientCPUSeconds = fl.close()
			return err
		}
		expect := done.Result.AckedIdx
		fl.broadcast(command{Cmd: "drain", Expect: expect})
		res, err := fl.collect(ctx, "result", o.Drain+time.Minute)
		srv.After = sample()
		rep.mergeResults(res)
		rep.ClientCPUSeconds = fl.close()
		rep.finishMessages(o)
		rep.finishFanOut(o, expect, res)
		return err
	}
	return nil
}

func befriendAll(ctx context.Context, a *api, pairs []pair, conc int) error {
	var mu sync.Mutex
	var first error
	next := make(chan pair)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := a.befriend(ctx, p.A, p.B); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range pairs {
		next <- p
	}
	close(next)
	wg.Wait()
	return first
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
