package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuild builds an archive from a small rootfs and reads it back the way
// containerd does: index.json -> manifest -> config/layer, digests checked.
func TestBuild(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "skip/me"), 0o755))
	must(os.Mkdir(filepath.Join(root, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky)) // umask-proof
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	out := filepath.Join(t.TempDir(), "img.tar")
	opts := BuildOptions{
		Rootfs: root, Name: "localhost/test/img:1.2", Out: out, Arch: "amd64", Mtime: 1700000000,
		Entrypoint: []string{"/usr/bin/tool"}, Env: []string{"PATH=/usr/bin"}, User: "26",
		Excludes: []string{"skip"},
	}
	first, err := Build(opts)
	must(err)
	firstBytes, err := os.ReadFile(out)
	must(err)
	// Same input, same bytes: the output is reproducible.
	second, err := Build(opts)
	must(err)
	secondBytes, err := os.ReadFile(out)
	must(err)
	if first.ManifestDigest != second.ManifestDigest || !bytes.Equal(firstBytes, secondBytes) {
		t.Fatalf("two builds differ: %s vs %s", first.ManifestDigest, second.ManifestDigest)
	}

	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(firstBytes))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		b, err := io.ReadAll(tr)
		must(err)
		files[h.Name] = b
	}
	blob := func(d string) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", d)
		}
		if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != d {
			t.Fatalf("blob %s has the wrong digest", d)
		}
		return b
	}
	var idx index
	must(json.Unmarshal(files["index.json"], &idx))
	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(idx.Manifests))
	}
	m := idx.Manifests[0]
	if m.Annotations[annotationContainerdName] != "localhost/test/img:1.2" || m.Annotations[annotationRefName] != "1.2" {
		t.Fatalf("annotations %v", m.Annotations)
	}
	var man manifest
	must(json.Unmarshal(blob(m.Digest), &man))
	var cfg imageConfig
	must(json.Unmarshal(blob(man.Config.Digest), &cfg))
	if cfg.Config.User != "26" || cfg.Config.Entrypoint[0] != "/usr/bin/tool" || cfg.Architecture != "amd64" {
		t.Fatalf("config %+v", cfg)
	}
	gz, err := gzip.NewReader(bytes.NewReader(blob(man.Layers[0].Digest)))
	must(err)
	layerTar, err := io.ReadAll(gz)
	must(err)
	if sum := sha256.Sum256(layerTar); "sha256:"+hex.EncodeToString(sum[:]) != cfg.RootFS.DiffIDs[0] {
		t.Fatal("diff_id is not the digest of the uncompressed layer")
	}
	var names []string
	types := map[string]*tar.Header{}
	lr := tar.NewReader(bytes.NewReader(layerTar))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		names = append(names, h.Name)
		types[h.Name] = h
	}
	want := []string{"bin", "tmp/", "usr/", "usr/bin/", "usr/bin/tool", "usr/bin/tool2"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("layer entries %q, want %q", names, want)
	}
	if h := types["usr/bin/tool2"]; h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/tool" {
		t.Fatalf("hardlink written as %+v", h)
	}
	if h := types["bin"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Fatalf("symlink written as %+v", h)
	}
	if h := types["tmp/"]; h.Mode != 0o1777 {
		t.Fatalf("tmp mode %o", h.Mode)
	}
	if h := types["usr/bin/tool"]; h.ModTime.Unix() != 1700000000 || h.Mode != 0o755 {
		t.Fatalf("tool header %+v", h)
	}
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{
		"localhost/dbaas/pause:3.10":         "3.10",
		"localhost:5000/dbaas/pg:17.6":       "17.6",
		"localhost/dbaas/cloudnative-pg:1.2": "1.2",
	} {
		if got, err := tagOf(ref); err != nil || got != want {
			t.Errorf("tagOf(%q) = %q, %v", ref, got, err)
		}
	}
	for _, bad := range []string{"localhost:5000/dbaas/pg", "pg:", "pg@sha256:00:1"} {
		if _, err := tagOf(bad); err == nil {
			t.Errorf("tagOf(%q) accepted", bad)
		}
	}
}
