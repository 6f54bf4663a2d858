package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

const fieldManager = "controlplane"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runInstallCRDs(args []string) int {
	fs := flag.NewFlagSet("install-crds", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the target cluster (default $KUBECONFIG)")
	timeout := fs.Duration("timeout", 2*time.Minute, "overall timeout (apply + wait for Established)")
	var paths stringList
	fs.Var(&paths, "crds", "CRD file or directory (recursive, *.yaml/*.yml, multi-document); repeatable")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: controlplane install-crds --kubeconfig FILE --crds PATH [--crds PATH]...\n\n"+
			"Server-side applies (field manager %q, force) every CustomResourceDefinition found\n"+
			"under the given paths and waits until all of them are Established.\n\n", fieldManager)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	paths = append(paths, fs.Args()...)
	if len(paths) == 0 {
		fmt.Fprintln(os.Stderr, "install-crds: at least one --crds PATH is required")
		return 2
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: *kubeconfig}, nil).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "install-crds: %v\n", err)
		return 1
	}
	cfg.QPS, cfg.Burst = 100, 200
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	names, err := installCRDs(ctx, cfg, paths)
	if err != nil {
		fmt.Fprintf(os.Stderr, "install-crds: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "install-crds: %d CRDs applied and Established in %.2fs\n", len(names), time.Since(start).Seconds())
	return 0
}

// crdFiles expands the given paths into a sorted, de-duplicated list of files.
// A path that is a file is taken as is; a directory is walked recursively for
// *.yaml and *.yml files.
func crdFiles(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// loadCRDs reads every YAML document of every file and returns the
// CustomResourceDefinitions (apiextensions.k8s.io/v1) as unstructured objects.
// Other kinds of documents are reported on stderr and skipped.
func loadCRDs(paths []string) ([]*unstructured.Unstructured, error) {
	files, err := crdFiles(paths)
	if err != nil {
		return nil, err
	}
	var crds []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
			}
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
			}
			js = bytes.TrimSpace(js)
			if len(js) == 0 || bytes.Equal(js, []byte("null")) {
				continue // empty document (e.g. leading or trailing ---)
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(js); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
			}
			gvk := obj.GroupVersionKind()
			if gvk.Kind != "CustomResourceDefinition" {
				fmt.Fprintf(os.Stderr, "install-crds: %s: document %d: skipping %s %q (not a CRD)\n", file, i, gvk.Kind, obj.GetName())
				continue
			}
			if gvk.GroupVersion() != apiextensionsv1.SchemeGroupVersion {
				return nil, fmt.Errorf("%s: document %d: CRD %q is %s, only apiextensions.k8s.io/v1 is served", file, i, obj.GetName(), gvk.GroupVersion())
			}
			// Server-managed fields must not be part of an apply configuration.
			unstructured.RemoveNestedField(obj.Object, "status")
			unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
			unstructured.RemoveNestedField(obj.Object, "metadata", "resourceVersion")
			unstructured.RemoveNestedField(obj.Object, "metadata", "uid")
			unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
			crds = append(crds, obj)
		}
	}
	return crds, nil
}

// installCRDs server-side applies every CRD under paths (field manager
// "controlplane", force=true) and waits until each one is Established.
func installCRDs(ctx context.Context, cfg *rest.Config, paths []string) ([]string, error) {
	t0 := time.Now()
	crds, err := loadCRDs(paths)
	if err != nil {
		return nil, err
	}
	if len(crds) == 0 {
		return nil, nil
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}

	// Apply with a few workers: the requests are large (the biggest CRDs are
	// several hundred KB) but the apiserver handles them concurrently.
	work := make(chan *unstructured.Unstructured)
	errs := make(chan error, len(crds))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				errs <- applyWithRetry(ctx, dyn, obj)
			}
		}()
	}
	for _, obj := range crds {
		work <- obj
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("applying CRDs: %w", context.Cause(ctx))
		}
		return nil, errors.Join(all...)
	}

	logf("applied %d CRDs with server-side apply in %.2fs, waiting for Established", len(crds), time.Since(t0).Seconds())

	// Wait for Established=True on each CRD, with one watch (a watch without a
	// resourceVersion starts with the current state of every CRD) rather than
	// polling: the objects are large and the apiserver is busy enough.
	pending := map[string]bool{}
	var names []string
	for _, obj := range crds {
		if !pending[obj.GetName()] {
			pending[obj.GetName()] = true
			names = append(names, obj.GetName())
		}
	}
	for len(pending) > 0 {
		w, err := client.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, metav1.ListOptions{})
		if err == nil {
			for ev := range w.ResultChan() {
				crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
				if !ok || !pending[crd.Name] {
					continue
				}
				for _, c := range crd.Status.Conditions {
					if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
						delete(pending, crd.Name)
					}
					if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse {
						w.Stop()
						return nil, fmt.Errorf("CRD %s: names not accepted: %s", crd.Name, c.Message)
					}
				}
				if len(pending) == 0 {
					break
				}
			}
			w.Stop()
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			var left []string
			for n := range pending {
				left = append(left, n)
			}
			sort.Strings(left)
			return nil, fmt.Errorf("CRDs not Established: %s: %w", strings.Join(left, ", "), ctx.Err())
		case <-time.After(200 * time.Millisecond): // watch ended or failed: start a new one
		}
	}
	return names, nil
}

func applyWithRetry(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = dyn.Resource(crdGVR).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if err == nil {
			return nil
		}
		// Conflicts and transient server errors are retried; invalid objects are not.
		if !(apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
			apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("apply CRD %s: %w", obj.GetName(), ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("apply CRD %s: %w", obj.GetName(), err)
}
