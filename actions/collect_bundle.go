package actions

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/config"
)

// Manifest is manifest.json, at the top of the bundle.
type Manifest struct {
	Kind        string    `json:"kind"`
	Cluster     string    `json:"cluster"`
	PlanHash    string    `json:"plan_hash"`
	CollectedAt time.Time `json:"collected_at"`
	Window      struct {
		Window
		// CappedUntil is the window's end as collected: Until capped at
		// the time of collection.
		CappedUntil time.Time `json:"capped_until"`
	} `json:"window"`
	// KeeperDegraded is set when the coordination service was severely
	// degraded: what reads through it was not queried.
	KeeperDegraded string         `json:"keeper_degraded,omitempty"`
	Nodes          []ManifestNode `json:"nodes"`
	// Redactions counts every secret replaced, in all sources.
	Redactions int `json:"redactions"`
	// Truncated lists every cut file (node/file: why).
	Truncated []string `json:"truncated,omitempty"`
	Limits    struct {
		MaxRows        int    `json:"max_rows"`
		MaxSourceBytes int64  `json:"max_source_bytes"`
		MaxBundleBytes int64  `json:"max_bundle_bytes"`
		QueryTimeout   string `json:"query_timeout"`
		MaxConcurrent  int    `json:"max_concurrent_per_node"`
	} `json:"limits"`
	Counts map[string]int `json:"counts"` // sources by status
}

// ManifestNode is one node's folder.
type ManifestNode struct {
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	Address string         `json:"address"`
	Sources []SourceRecord `json:"sources"`
}

type bundleResult struct {
	Path    string         `json:"path"`
	Name    string         `json:"name"`
	Bytes   int64          `json:"bytes"`
	Summary string         `json:"summary"`
	Counts  map[string]int `json:"counts"`
	Deleted []string       `json:"deleted,omitempty"` // old bundles removed by retention
}

type uploadResult struct {
	FileID  string `json:"file_id,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}

// BundleDir is where bundles are kept, under the data directory.
func BundleDir(dataDir string) string { return filepath.Join(dataDir, "bundles") }

// slackMaxFileBytes is Slack's limit on one file.
const slackMaxFileBytes = 1 << 30

func bundleName(cluster string, w Window, hash string) string {
	return fmt.Sprintf("%s-%s-%s.tar.gz", cluster, w.Anchor.UTC().Format("20060102T150405Z"), hash[:8])
}

func (a *CollectLogs) bundle(ctx context.Context, plan Plan, d CollectLogsDetails, cl *config.Cluster, prior map[string]StepResult) (StepResult, error) {
	hash := plan.Hash()
	staging := a.stagingDir(plan)
	now := a.deps.Now().UTC()
	m := Manifest{Kind: CollectLogsKind, Cluster: plan.Cluster, PlanHash: hash, CollectedAt: now, Counts: map[string]int{}}
	m.Window.Window = d.Window
	m.Window.CappedUntil = d.Window.Until
	if now.Before(d.Window.Until) {
		m.Window.CappedUntil = now.Truncate(time.Second)
	}
	m.Limits.MaxRows, m.Limits.MaxSourceBytes, m.Limits.MaxBundleBytes = d.MaxRows, d.MaxSourceBytes, d.MaxBundleBytes
	m.Limits.QueryTimeout, m.Limits.MaxConcurrent = d.QueryTimeout.String(), d.MaxConcurrent

	// Budget for the files: the cap less room for the manifest and the tar
	// and gzip framing, so that the bundle itself stays under the cap even
	// when nothing compresses.
	nfiles := int64(0)
	for _, res := range prior {
		var rec SourceRecord
		if json.Unmarshal(res.Data, &rec) == nil {
			nfiles += int64(len(rec.Files))
		}
	}
	draft, _ := json.MarshalIndent(prior, "", "  ")
	budget := d.MaxBundleBytes - int64(len(draft)) - 8<<10 - nfiles*(1024+256) - d.MaxBundleBytes/500
	type entry struct {
		node, name, path string
		size             int64
		rec              *SourceFile
	}
	var entries []entry
	byNode := map[string]*ManifestNode{}
	for _, n := range d.Nodes {
		byNode[n.Name] = &ManifestNode{Name: n.Name, Kind: n.Kind, Address: n.Address}
	}
	for _, st := range plan.Steps {
		res, ok := prior[st.ID]
		if !ok || st.Node == "" {
			continue
		}
		var rec SourceRecord
		if err := json.Unmarshal(res.Data, &rec); err != nil {
			continue
		}
		if rec.Reason != "" && strings.Contains(rec.Reason, "nothing that reads through it") && m.KeeperDegraded == "" {
			m.KeeperDegraded = rec.Reason
		}
		mn := byNode[rec.Node]
		if mn == nil {
			mn = &ManifestNode{Name: rec.Node}
			byNode[rec.Node] = mn
		}
		mn.Sources = append(mn.Sources, rec)
	}
	for _, n := range d.Nodes {
		mn := byNode[n.Name]
		for si := range mn.Sources {
			rec := &mn.Sources[si]
			for fi := range rec.Files {
				f := &rec.Files[fi]
				p := filepath.Join(staging, rec.Node, f.Name)
				st, err := os.Stat(p)
				if err != nil {
					f.Missing, f.Bytes = true, 0
					rec.Reason = strings.TrimPrefix(rec.Reason+"; ", "; ") + f.Name + " was lost before bundling"
					continue
				}
				size := st.Size()
				if size > budget {
					f.Truncated = true
					f.Truncation = strings.TrimPrefix(f.Truncation+"; ", "; ") + fmt.Sprintf("max_bundle_bytes (%s): cut from %s", config.ByteSize(d.MaxBundleBytes), config.ByteSize(size))
					size = max(budget, 0)
					rec.Truncated = true
				}
				budget -= size
				f.Bytes = size
				entries = append(entries, entry{node: rec.Node, name: f.Name, path: p, size: size, rec: f})
				if f.Truncated {
					m.Truncated = append(m.Truncated, rec.Node+"/"+f.Name+": "+f.Truncation)
				}
			}
			m.Redactions += rec.Redactions
			m.Counts[rec.Status]++
		}
		m.Nodes = append(m.Nodes, *mn)
	}
	// A degraded Keeper found by a later source is also the manifest's.
	for _, n := range m.Nodes {
		for _, s := range n.Sources {
			if m.KeeperDegraded == "" && strings.Contains(s.Reason, "nothing that reads through it") {
				m.KeeperDegraded = s.Reason
			}
		}
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return StepResult{}, err
	}
	dir := BundleDir(a.deps.DataDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return StepResult{}, err
	}
	name := bundleName(plan.Cluster, d.Window, hash)
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	if err := writeBundle(tmp, manifest, now, func(tw *tar.Writer) error {
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := addFile(tw, e.node+"/"+e.name, e.path, e.size, now); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		os.Remove(tmp)
		return StepResult{}, fmt.Errorf("write bundle: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return StepResult{}, err
	}
	fi, err := os.Stat(final)
	if err != nil {
		return StepResult{}, err
	}
	res := bundleResult{Path: final, Name: name, Bytes: fi.Size(), Counts: m.Counts}
	res.Summary = summarize(m, fi.Size())
	res.Deleted = a.retain(cl, name)
	data, _ := json.Marshal(res)
	return StepResult{Output: res.Summary, Data: data, Artifacts: []Artifact{{Path: final, Name: name, Bytes: fi.Size()}}}, nil
}

func writeBundle(path string, manifest []byte, now time.Time, files func(*tar.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	err = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o640, Size: int64(len(manifest)), ModTime: now, Typeflag: tar.TypeReg})
	if err == nil {
		_, err = tw.Write(manifest)
	}
	if err == nil {
		err = files(tw)
	}
	for _, c := range []io.Closer{tw, gz} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func addFile(tw *tar.Writer, name, path string, size int64, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	n, err := io.CopyN(tw, f, size)
	if err != nil {
		return fmt.Errorf("%s: %w after %d bytes", name, err, n)
	}
	return nil
}

// summarize is the thread message: what was collected and what was not.
func summarize(m Manifest, size int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Logs of %s from %s to %s UTC: %d sources collected", m.Cluster,
		m.Window.Since.Format("2006-01-02 15:04:05"), m.Window.CappedUntil.Format("15:04:05"), m.Counts[StatusCollected])
	for _, st := range []string{StatusNotAvailable, StatusNotConfigured, StatusSkipped, StatusFailed} {
		if n := m.Counts[st]; n > 0 {
			fmt.Fprintf(&b, ", %d %s", n, strings.ReplaceAll(st, "_", " "))
		}
	}
	fmt.Fprintf(&b, "; %d secrets redacted; bundle %s.", m.Redactions, humanBytes(size))
	var problems []string
	for _, n := range m.Nodes {
		for _, s := range n.Sources {
			if s.Status == StatusFailed {
				problems = append(problems, fmt.Sprintf("%s/%s failed: %s", s.Node, s.Source, firstLine(s.Reason, 160)))
			}
		}
	}
	unreachable := map[string]bool{}
	for _, n := range m.Nodes {
		for _, s := range n.Sources {
			if s.Unreachable && !unreachable[n.Name] {
				unreachable[n.Name] = true
			}
		}
	}
	if len(unreachable) > 0 {
		var names []string
		for n := range unreachable {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "\nUnreachable: %s.", strings.Join(names, ", "))
	}
	if m.KeeperDegraded != "" {
		fmt.Fprintf(&b, "\nCoordination: %s.", m.KeeperDegraded)
	}
	if len(m.Truncated) > 0 {
		fmt.Fprintf(&b, "\nTruncated: %d files (see manifest.json).", len(m.Truncated))
	}
	for i, p := range problems {
		if i == 5 {
			fmt.Fprintf(&b, "\n… %d more in manifest.json", len(problems)-5)
			break
		}
		b.WriteString("\n" + p)
	}
	return b.String()
}

// retain deletes the cluster's bundles beyond keep_bundles and older than
// retention (never the one just written), and staging directories left by
// collections over a day old.
func (a *CollectLogs) retain(cl *config.Cluster, current string) []string {
	c := cl.Actions.CollectLogs
	dir := BundleDir(a.deps.DataDir)
	matches, _ := filepath.Glob(filepath.Join(dir, cl.Name+"-*.tar.gz"))
	type bf struct {
		path string
		mod  time.Time
	}
	var files []bf
	for _, p := range matches {
		if filepath.Base(p) == current {
			continue
		}
		// Only this cluster's: the name after "<cluster>-" is a timestamp.
		rest := strings.TrimPrefix(filepath.Base(p), cl.Name+"-")
		if len(rest) < 16 || rest[8] != 'T' {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			files = append(files, bf{p, fi.ModTime()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	now := a.deps.Now()
	var deleted []string
	for i, f := range files {
		tooMany := c.KeepBundles > 0 && i+1 >= c.KeepBundles // +1: the current one
		tooOld := c.Retention > 0 && now.Sub(f.mod) > c.Retention
		if tooMany || tooOld {
			if os.Remove(f.path) == nil {
				deleted = append(deleted, filepath.Base(f.path))
			}
		}
	}
	stagings, _ := filepath.Glob(filepath.Join(a.deps.DataDir, "collect", "*"))
	for _, s := range stagings {
		if fi, err := os.Stat(s); err == nil && now.Sub(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(s)
		}
	}
	return deleted
}

func (a *CollectLogs) upload(ctx context.Context, plan Plan, d CollectLogsDetails, prior map[string]StepResult) (StepResult, error) {
	var b bundleResult
	if err := json.Unmarshal(prior["bundle"].Data, &b); err != nil || b.Path == "" {
		return StepResult{}, fmt.Errorf("upload: no bundle was recorded")
	}
	skip := func(why string) (StepResult, error) {
		data, _ := json.Marshal(uploadResult{Skipped: why})
		return StepResult{Output: "bundle not uploaded: " + why + "; it is at " + b.Path, Data: data}, nil
	}
	switch {
	case d.Upload == nil:
		return skip("no Slack thread")
	case a.deps.Uploader == nil:
		return skip("Slack is not configured")
	case b.Bytes > slackMaxFileBytes:
		return skip(fmt.Sprintf("%s is over Slack's 1 GiB file limit", config.ByteSize(b.Bytes)))
	}
	id, err := a.deps.Uploader.UploadFile(ctx, FileUpload{
		Path: b.Path, Name: b.Name, Title: "chmedic logs: " + b.Name,
		Channel: d.Upload.Channel, ThreadTS: d.Upload.ThreadTS, Comment: b.Summary,
	})
	if err != nil {
		return StepResult{}, fmt.Errorf("upload %s: %w", b.Name, err)
	}
	data, _ := json.Marshal(uploadResult{FileID: id})
	return StepResult{Output: "bundle " + b.Name + " uploaded to the thread", Data: data}, nil
}

// humanBytes formats n as 1.2 MiB, 340 KiB or 512 B.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
