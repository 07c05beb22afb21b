// Command workqueue-bench times client-go's rate-limiting work queue on the same
// workloads as kube-reconcile's queue (benches/versus_client_go.rs), printing one
// "name ops/s" line per workload.
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

func newQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{},
	)
}

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
	flag.Parse()
	k := keys(1000)
	fmt.Printf("single %.0f\n", single(*ops, k))
	fmt.Printf("batch %.0f\n", batch(*ops, k))
	fmt.Printf("contended %.0f\n", contended(*ops, 4, 4, keys(10000)))
}
