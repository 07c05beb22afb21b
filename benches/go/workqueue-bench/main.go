// Command workqueue-bench times client-go's rate-limiting work queue on one of the
// workloads of kube-reconcile's queue benchmark (benches/versus_client_go.rs) and
// prints "gomaxprocs N" and "name ops/s". The Rust side runs it once per workload and
// round, with GOMAXPROCS set to the number of OS threads its own side of that
// workload uses, under the same CPU affinity (inherited from the Rust process).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// newQueue is what kube-controller-manager's controllers use: the default controller
// rate limiter and no metrics provider (client-go's global provider is a no-op unless
// one is registered, and none is here).
func newQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{},
	)
}

// keys are the same strings as the Rust side's ObjectKeys ("namespace-N/object-M").
func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("namespace-%d/object-%d", i%50, i)
	}
	return out
}

// single: one goroutine does add, get, done in turn.
func single(ops int, keys []string) float64 {
	q := newQueue()
	defer q.ShutDown()
	start := time.Now()
	for i := 0; i < ops; i++ {
		q.Add(keys[i%len(keys)])
		k, _ := q.Get()
		q.Done(k)
	}
	return float64(ops) / time.Since(start).Seconds()
}

// batch: add every key, then get and done every key.
func batch(ops int, keys []string) float64 {
	q := newQueue()
	defer q.ShutDown()
	start := time.Now()
	for done := 0; done < ops; done += len(keys) {
		for _, k := range keys {
			q.Add(k)
		}
		for range keys {
			k, _ := q.Get()
			q.Done(k)
		}
	}
	return float64(ops) / time.Since(start).Seconds()
}

// contended: producers add keys while workers get and done them; ops counts adds.
func contended(ops, producers, workers int, keys []string) float64 {
	q := newQueue()
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				q.Done(k)
			}
		}()
	}
	var pg sync.WaitGroup
	per := ops / producers
	for p := 0; p < producers; p++ {
		pg.Add(1)
		go func(p int) {
			defer pg.Done()
			for i := 0; i < per; i++ {
				q.Add(keys[(p*per+i)%len(keys)])
			}
		}(p)
	}
	pg.Wait()
	q.ShutDownWithDrain()
	wg.Wait()
	return float64(per*producers) / time.Since(start).Seconds()
}

func main() {
	ops := flag.Int("ops", 1_000_000, "operations per workload")
	workload := flag.String("workload", "single", "single, batch or contended")
	flag.Parse()
	fmt.Printf("gomaxprocs %d\n", runtime.GOMAXPROCS(0))
	var opsPerSec float64
	switch *workload {
	case "single":
		opsPerSec = single(*ops, keys(1000))
	case "batch":
		opsPerSec = batch(*ops, keys(1000))
	case "contended":
		opsPerSec = contended(*ops, 4, 4, keys(10000))
	default:
		fmt.Fprintf(os.Stderr, "unknown workload %q\n", *workload)
		os.Exit(2)
	}
	fmt.Printf("%s %.0f\n", *workload, opsPerSec)
}
