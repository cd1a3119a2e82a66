package baseimage

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// archiveDate is the Date of the suite's Release file among the archive
// lists of tree (debootstrap's, kept in the shared tree): the moment of
// the archive the packages came from, the same for every tree made from
// those lists.
func archiveDate(tree string) (time.Time, error) {
	lists := filepath.Join(tree, "var/lib/apt/lists")
	files, _ := filepath.Glob(filepath.Join(lists, "*_InRelease"))
	more, _ := filepath.Glob(filepath.Join(lists, "*_Release"))
	for _, f := range append(files, more...) {
		if d, ok := releaseDate(f); ok {
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("no Release file with a Date in %s (debootstrap left no archive lists)", lists)
}

func releaseDate(path string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Date: "); ok {
			d, err := time.Parse(time.RFC1123, strings.TrimSpace(v))
			if err != nil {
				d, err = time.Parse(time.RFC1123Z, strings.TrimSpace(v))
			}
			return d, err == nil
		}
	}
	return time.Time{}, false
}

// normalize removes from a finished tree what differs from one run of the
// same recipe to the next: ldconfig's auxiliary cache (inode numbers and
// change times of the libraries) and, in /etc/shadow, the day each
// password was last changed (the day debootstrap or adduser ran), which
// becomes the archive's date, as SOURCE_DATE_EPOCH would have made it.
func normalize(tree string, archive time.Time) error {
	if err := os.Remove(filepath.Join(tree, "var/cache/ldconfig/aux-cache")); err != nil && !os.IsNotExist(err) {
		return err
	}
	day := strconv.FormatInt(archive.Unix()/86400, 10)
	for _, name := range []string{"etc/shadow", "etc/shadow-"} {
		path := filepath.Join(tree, name)
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			f := strings.Split(l, ":")
			if len(f) >= 3 && f[2] != "" {
				if _, err := strconv.Atoi(f[2]); err == nil {
					f[2] = day
					lines[i] = strings.Join(f, ":")
				}
			}
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}
