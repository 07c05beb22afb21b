// Command initial-sync-rss starts one client-go Pod informer on a namespace, waits for
// its first sync and prints the process's peak resident memory (VmHWM) and current
// resident memory (VmRSS) from /proc/self/status, in KiB. Run it as a fresh process
// so the peak is the informer's own. Whether the informer lists with a streaming watch
// follows client-go's WatchListClient feature gate (env KUBE_FEATURE_WatchListClient).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// status returns the value of one "Key:  N kB" line of /proc/self/status.
func status(key string) string {
	file, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer file.Close()
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), key+":"); ok {
			return strings.TrimSuffix(strings.TrimSpace(rest), " kB")
		}
	}
	return "?"
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	namespace := flag.String("namespace", "", "namespace of the pods")
	strip := flag.Bool("strip", false, "drop managedFields before caching")
	flag.Parse()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// No client-side rate limit: the list is what is measured.
	config.QPS, config.Burst = 1000, 1000
	client := kubernetes.NewForConfigOrDie(config)
	options := []informers.SharedInformerOption{informers.WithNamespace(*namespace)}
	if *strip {
		options = append(options, informers.WithTransform(func(obj interface{}) (interface{}, error) {
			if accessor, err := meta.Accessor(obj); err == nil {
				accessor.SetManagedFields(nil)
			}
			return obj, nil
		}))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, options...)
	informer := factory.Core().V1().Pods().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fmt.Fprintln(os.Stderr, "informer did not sync")
		os.Exit(1)
	}
	fmt.Printf("objects %d\n", len(informer.GetStore().List()))
	fmt.Printf("watch_list %t\n", clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient))
	fmt.Printf("vmhwm_kib %s\nvmrss_kib %s\n", status("VmHWM"), status("VmRSS"))
	cancel()
	factory.Shutdown()
}
