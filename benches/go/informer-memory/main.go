// Command informer-memory measures the heap a client-go informer needs per cached Pod:
// it lists and watches the pods of one namespace, waits for sync, collects garbage and
// prints "bytes_per_object N" for the store without a transform, then with a transform
// that drops managedFields.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func heap() uint64 {
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func measure(client kubernetes.Interface, namespace string, transform cache.TransformFunc) (int, float64) {
	before := heap()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace), informers.WithTransform(transform))
	informer := factory.Core().V1().Pods().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)
	time.Sleep(time.Second)
	count := len(informer.GetStore().List())
	after := heap()
	runtime.KeepAlive(informer)
	cancel()
	factory.Shutdown()
	return count, float64(after-before) / float64(count)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	namespace := flag.String("namespace", "", "namespace of the pods")
	flag.Parse()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	config.QPS, config.Burst = 1000, 1000
	client := kubernetes.NewForConfigOrDie(config)
	count, plain := measure(client, *namespace, nil)
	fmt.Printf("objects %d\nbytes_per_object %.0f\n", count, plain)
	_, stripped := measure(client, *namespace, func(obj interface{}) (interface{}, error) {
		if accessor, err := meta.Accessor(obj); err == nil {
			accessor.SetManagedFields(nil)
		}
		return obj, nil
	})
	fmt.Printf("bytes_per_object_without_managed_fields %.0f\n", stripped)
	_ = corev1.Pod{}
}
