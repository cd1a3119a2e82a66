package baseimage

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// Epoch is the modification time written for every file of a layer. Fixed
// times (and sorted entries, numeric owners) make the same tree give the same
// digest, which is what lets a second run find its image already pushed.
var Epoch = time.Unix(0, 0).UTC()

// File is one entry of a layer built from host files (FilesLayer).
type File struct {
	Path   string      // path inside the image, absolute
	Source string      // host file to copy
	Data   []byte      // file contents, when there is no Source
	Link   string      // symlink target, when the entry is a symlink
	Mode   fs.FileMode // permission bits (and fs.ModeDir for directories)
}

// DirLayer writes a deterministic gzip'd tar of dir to out (created, then
// reused when it already exists) and returns it as a layer. Device nodes,
// sockets and the contents of /proc, /sys and /dev are left out: runtimes
// provide those. Hard links are kept as links, so the layer is no bigger than
// the tree.
func DirLayer(dir, out string) (v1.Layer, error) {
	return TreeLayer(dir, "", nil, out)
}

// TreeLayer is DirLayer with dir's tree placed at the path at inside the
// image (its parents written as directories) and the entries skip names
// (paths relative to dir) left out with everything below them.
func TreeLayer(dir, at string, skip []string, out string) (v1.Layer, error) {
	// Parallel test packages and targets build the same cached layer; the
	// lock makes the second wait and reuse the first one's file.
	unlock, err := cachedir.Lock(out + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	at = strings.Trim(filepath.ToSlash(filepath.Clean("/"+at)), "/")
	if _, err := os.Stat(out); err != nil {
		err := writeGzipTar(out, func(tw *tar.Writer) error {
			if at != "" {
				for _, d := range append(parents(at), at) {
					if err := tw.WriteHeader(dirHeader(d+"/", 0o755)); err != nil {
						return err
					}
				}
			}
			return tarDir(tw, dir, at, skip)
		})
		if err != nil {
			return nil, fmt.Errorf("layer from %s: %w", dir, err)
		}
	}
	return tarball.LayerFromFile(out)
}

// FilesLayer writes a deterministic layer holding the given entries; parent
// directories are created as needed.
func FilesLayer(files []File, out string) (v1.Layer, error) {
	err := writeGzipTar(out, func(tw *tar.Writer) error {
		sorted := append([]File(nil), files...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
		seen := map[string]bool{}
		for _, f := range sorted {
			name := strings.TrimPrefix(filepath.Clean(f.Path), "/")
			for _, parent := range parents(name) {
				if !seen[parent] {
					seen[parent] = true
					if err := tw.WriteHeader(dirHeader(parent+"/", 0o755)); err != nil {
						return err
					}
				}
			}
			switch {
			case f.Link != "":
				h := &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777, ModTime: Epoch, Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			case f.Data != nil:
				h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(f.Data)), Mode: int64(f.Mode.Perm()), ModTime: Epoch, Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := tw.Write(f.Data); err != nil {
					return err
				}
			case f.Source == "":
				seen[name] = true
				if err := tw.WriteHeader(dirHeader(name+"/", int64(f.Mode.Perm()))); err != nil {
					return err
				}
			default:
				if err := copyFile(tw, name, f.Source, int64(f.Mode.Perm())); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(out)
}

func parents(name string) []string {
	var ps []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			ps = append(ps, name[:i])
		}
	}
	return ps
}

func dirHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: Epoch, Format: tar.FormatPAX}
}

func copyFile(tw *tar.Writer, name, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: mode, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// writeGzipTar writes atomically: a crash leaves no half-written layer that a
// later run would take for a finished one.
func writeGzipTar(out string, fill func(*tar.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	if err := fill(tw); err != nil {
		f.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// skipContents are directories whose contents a runtime mounts over.
var skipContents = map[string]bool{"proc": true, "sys": true, "dev": true}

// tarDir writes root's tree, every name under prefix ("" for the image's
// root), without the entries skip names.
func tarDir(tw *tar.Writer, root, prefix string, skip []string) error {
	links := map[[2]uint64]string{} // (dev, inode) -> first path, for hard links
	return walkSorted(root, "", skip, func(rel string, info fs.FileInfo) error {
		if rel == ".complete" {
			return nil
		}
		full := filepath.Join(root, rel)
		rel = path.Join(prefix, filepath.ToSlash(rel))
		st, _ := info.Sys().(*syscall.Stat_t)
		h := &tar.Header{Name: rel, Mode: int64(info.Mode().Perm()), ModTime: Epoch, Format: tar.FormatPAX}
		if info.Mode()&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if st != nil {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		switch {
		case info.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
			return tw.WriteHeader(h)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(h)
		case info.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					return tw.WriteHeader(h)
				}
				links[key] = rel
			}
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyN(tw, f, info.Size())
			return err
		default:
			return nil // devices, sockets, fifos: provided by the runtime
		}
	})
}

// walkSorted visits every entry below root in lexical order, depth first,
// but those skip names and what is below them.
func walkSorted(root, rel string, skip []string, visit func(rel string, info fs.FileInfo) error) error {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		r := filepath.Join(rel, e.Name())
		if slices.Contains(skip, filepath.ToSlash(r)) {
			continue
		}
		info, err := os.Lstat(filepath.Join(root, r))
		if err != nil {
			return err
		}
		if err := visit(r, info); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		if info.IsDir() && !(rel == "" && skipContents[e.Name()]) {
			if err := walkSorted(root, r, skip, visit); err != nil {
				return err
			}
		}
	}
	return nil
}
