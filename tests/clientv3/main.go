// Command clientv3_check drives etcd's Go client, clientv3 3.4 (Debian's
// golang-etcd-server-dev, built offline in GOPATH mode), against a cluster
// that serves etcd's v3 API: real etcd or raftkv (tests/clientv3_test.cc).
//
// Each worker loops: a put of a fresh key, a put of its own "last" key
// followed by a get of it, and a compare-and-swap increment of one shared
// counter (Get, then Txn If(mod_revision unchanged) Then(Put value+1)); every
// tenth round a prefix get of its keys. It runs until -stop_file exists (or
// -rounds rounds per worker without one), then checks what it was told:
//
//   - every acknowledged put is there with its value (prefix gets, during
//     the run and at the end): no acknowledged write lost;
//   - a get of "last" returns the last acknowledged value, or one whose put
//     failed (its outcome unknown);
//   - no two successful CAS txns set the counter to the same value, and the
//     final counter lies between the acknowledged increments and those plus
//     the failed ones.
//
// Failed calls (after clientv3's own retries) are counted, not fatal: a
// leader may be killed mid-run. Prints one line of JSON and exits 1 if any
// check failed, 2 on bad flags or no connection.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

var (
	endpoints   = flag.String("endpoints", "", "comma-separated host:port of the members")
	prefix      = flag.String("prefix", "clientv3/", "prefix of every key written")
	workers     = flag.Int("workers", 4, "concurrent workers, each on its own keys")
	rounds      = flag.Int("rounds", 50, "rounds per worker (at least this many with -stop_file)")
	stopFile    = flag.String("stop_file", "", "run until this file exists (and -rounds are done)")
	maxDuration = flag.Duration("max_duration", 90*time.Second, "stop after this long whatever else")
	opTimeout   = flag.Duration("op_timeout", 5*time.Second, "deadline of one call")
)

type summary struct {
	Workers          int      `json:"workers"`
	Rounds           int64    `json:"rounds"`
	PutsOK           int64    `json:"puts_ok"`
	PutsFailed       int64    `json:"puts_failed"`
	GetsOK           int64    `json:"gets_ok"`
	GetsFailed       int64    `json:"gets_failed"`
	TxnOK            int64    `json:"txn_ok"`
	TxnConflict      int64    `json:"txn_conflict"`
	TxnFailed        int64    `json:"txn_failed"`
	PrefixGetsOK     int64    `json:"prefix_gets_ok"`
	PrefixGetsFailed int64    `json:"prefix_gets_failed"`
	AckedKeys        int      `json:"acked_keys"`
	Counter          int64    `json:"counter"`
	ElapsedMs        int64    `json:"elapsed_ms"`
	Errors           []string `json:"errors"`
	Violations       []string `json:"violations"`
}

type checker struct {
	cli   *clientv3.Client
	start time.Time

	mu         sync.Mutex
	s          summary
	casValues  map[int64]bool // counter values set by successful CAS txns
	errorKinds map[string]bool
}

func (c *checker) count(field *int64) {
	c.mu.Lock()
	*field++
	c.mu.Unlock()
}

// fail records a failed call (its outcome unknown); the first few distinct
// messages go into the summary.
func (c *checker) fail(field *int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*field++
	msg := err.Error()
	if !c.errorKinds[msg] && len(c.errorKinds) < 10 {
		c.errorKinds[msg] = true
		c.s.Errors = append(c.s.Errors, msg)
	}
}

func (c *checker) violate(format string, args ...interface{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.s.Violations) < 20 {
		c.s.Violations = append(c.s.Violations, fmt.Sprintf(format, args...))
	}
}

func (c *checker) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), *opTimeout)
}

func (c *checker) stopping(round int) bool {
	if time.Since(c.start) > *maxDuration {
		return true
	}
	if round < *rounds {
		return false
	}
	if *stopFile == "" {
		return true
	}
	_, err := os.Stat(*stopFile)
	return err == nil
}

func counterKey() string { return *prefix + "counter" }

// A worker's own keys; acked maps each acknowledged key to its value.
type worker struct {
	id        int
	acked     map[string]string
	lastAcked int64
	lastLost  map[int64]bool // "last" values whose put failed
}

func (w *worker) keyPrefix() string { return fmt.Sprintf("%sw%d/", *prefix, w.id) }

// checkPrefix reads every key of w and checks each acknowledged one.
func (c *checker) checkPrefix(w *worker, final bool) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.cli.Get(ctx, w.keyPrefix()+"k", clientv3.WithPrefix())
	if err != nil {
		if final {
			c.violate("worker %d: final prefix get failed: %v", w.id, err)
		}
		c.fail(&c.s.PrefixGetsFailed, err)
		return
	}
	c.count(&c.s.PrefixGetsOK)
	got := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	var missing []string
	for k, v := range w.acked {
		if gv, ok := got[k]; !ok || gv != v {
			missing = append(missing, fmt.Sprintf("%s=%q (read %q, present %v)", k, v, gv, ok))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		if len(missing) > 3 {
			missing = missing[:3]
		}
		c.violate("worker %d: acknowledged puts missing at revision %d: %s", w.id,
			resp.Header.Revision, strings.Join(missing, "; "))
	}
}

func (c *checker) round(w *worker, n int) {
	// A fresh key.
	key := fmt.Sprintf("%sk%06d", w.keyPrefix(), n)
	val := fmt.Sprintf("v%d", n)
	ctx, cancel := c.ctx()
	_, err := c.cli.Put(ctx, key, val)
	cancel()
	if err != nil {
		c.fail(&c.s.PutsFailed, err)
	} else {
		c.count(&c.s.PutsOK)
		w.acked[key] = val
	}

	// The worker's "last" key, then a read of it.
	last := w.keyPrefix() + "last"
	ctx, cancel = c.ctx()
	_, err = c.cli.Put(ctx, last, strconv.Itoa(n))
	cancel()
	if err != nil {
		c.fail(&c.s.PutsFailed, err)
		w.lastLost[int64(n)] = true
	} else {
		c.count(&c.s.PutsOK)
		w.lastAcked = int64(n)
	}
	ctx, cancel = c.ctx()
	resp, err := c.cli.Get(ctx, last)
	cancel()
	if err != nil {
		c.fail(&c.s.GetsFailed, err)
	} else {
		c.count(&c.s.GetsOK)
		if len(resp.Kvs) == 0 {
			if w.lastAcked != -1 {
				c.violate("worker %d: %s missing after put %d was acknowledged", w.id, last, w.lastAcked)
			}
		} else if v, perr := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64); perr != nil ||
			(v != w.lastAcked && !w.lastLost[v]) {
			c.violate("worker %d: %s read %q, last acknowledged %d", w.id, last,
				resp.Kvs[0].Value, w.lastAcked)
		}
	}

	// Compare-and-swap increment of the shared counter.
	ctx, cancel = c.ctx()
	defer cancel()
	cur, err := c.cli.Get(ctx, counterKey())
	if err != nil {
		c.fail(&c.s.GetsFailed, err)
		return
	}
	c.count(&c.s.GetsOK)
	if len(cur.Kvs) != 1 {
		c.violate("counter missing at revision %d", cur.Header.Revision)
		return
	}
	value, perr := strconv.ParseInt(string(cur.Kvs[0].Value), 10, 64)
	if perr != nil {
		c.violate("counter holds %q", cur.Kvs[0].Value)
		return
	}
	ctx2, cancel2 := c.ctx()
	defer cancel2()
	txn, err := c.cli.Txn(ctx2).
		If(clientv3.Compare(clientv3.ModRevision(counterKey()), "=", cur.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(counterKey(), strconv.FormatInt(value+1, 10))).
		Commit()
	if err != nil {
		c.fail(&c.s.TxnFailed, err)
		return
	}
	if !txn.Succeeded {
		c.count(&c.s.TxnConflict)
		return
	}
	c.mu.Lock()
	c.s.TxnOK++
	dup := c.casValues[value+1]
	c.casValues[value+1] = true
	c.mu.Unlock()
	if dup {
		c.violate("two successful CAS txns set the counter to %d", value+1)
	}
	if txn.Header.Revision <= cur.Kvs[0].ModRevision {
		c.violate("CAS txn revision %d not after the counter's %d", txn.Header.Revision,
			cur.Kvs[0].ModRevision)
	}
}

func main() {
	flag.Parse()
	if *endpoints == "" || *workers < 1 {
		fmt.Fprintln(os.Stderr, "clientv3_check: --endpoints and --workers >= 1 are required")
		os.Exit(2)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientv3_check: %v\n", err)
		os.Exit(2)
	}
	defer cli.Close()

	c := &checker{cli: cli, start: time.Now(), casValues: map[int64]bool{},
		errorKinds: map[string]bool{}}
	c.s.Workers = *workers
	c.s.Errors = []string{}
	c.s.Violations = []string{}

	// The counter starts at 0 (retried: the cluster may still be settling).
	var initErr error
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := c.ctx()
		_, initErr = cli.Put(ctx, counterKey(), "0")
		cancel()
		if initErr == nil {
			break
		}
	}
	if initErr != nil {
		fmt.Fprintf(os.Stderr, "clientv3_check: cannot write the counter: %v\n", initErr)
		os.Exit(2)
	}

	ws := make([]*worker, *workers)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &worker{id: i, acked: map[string]string{}, lastAcked: -1, lastLost: map[int64]bool{}}
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for n := 0; !c.stopping(n); n++ {
				c.round(w, n)
				c.mu.Lock()
				c.s.Rounds++
				c.mu.Unlock()
				if n%10 == 9 {
					c.checkPrefix(w, false)
				}
			}
		}(ws[i])
	}
	wg.Wait()

	// Final checks, on a settled cluster: every acknowledged put, the counter.
	for _, w := range ws {
		c.checkPrefix(w, true)
		c.s.AckedKeys += len(w.acked)
	}
	ctx, cancel := c.ctx()
	final, err := cli.Get(ctx, counterKey())
	cancel()
	if err != nil || len(final.Kvs) != 1 {
		c.violate("final counter read failed: %v", err)
	} else {
		c.s.Counter, _ = strconv.ParseInt(string(final.Kvs[0].Value), 10, 64)
		if c.s.Counter < c.s.TxnOK || c.s.Counter > c.s.TxnOK+c.s.TxnFailed {
			c.violate("counter %d outside [acknowledged %d, + unknown %d]", c.s.Counter, c.s.TxnOK,
				c.s.TxnFailed)
		}
	}
	if c.s.PutsOK == 0 || c.s.TxnOK == 0 {
		c.violate("no progress: %d puts, %d CAS txns acknowledged", c.s.PutsOK, c.s.TxnOK)
	}
	c.s.ElapsedMs = time.Since(c.start).Milliseconds()

	out, _ := json.Marshal(c.s)
	fmt.Println(string(out))
	if len(c.s.Violations) > 0 {
		os.Exit(1)
	}
}
