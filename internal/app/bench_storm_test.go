package app

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

func postWebhook(tb testing.TB, url string, body []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Errorf("webhook status %d", resp.StatusCode)
	}
}

func percentile(ds []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[min(len(s)-1, len(s)*p/100)].Microseconds()) / 1000
}

// BenchmarkAlertBurstToSlack: three alert groups of one channel arrive at
// once (storm folding off, the diagnosis cache on, a quiet channel before
// each burst): the latency from the webhooks to the third message in
// Slack. With the per-channel token bucket (slack.post_burst 3) the third
// goes out without waiting for pacing; with strict 1/s pacing it waited
// about 2 s. Reports the third message's p50 and p99.
//
//	go test ./internal/app/ -run '^$' -bench AlertBurstToSlack -benchtime 10x
func BenchmarkAlertBurstToSlack(b *testing.B) {
	a, slk := startApp(b, "15s")
	url := "http://" + a.Addr() + "/webhook"
	postWebhook(b, url, payload("warm-up")) // the first round fills the cache
	slk.WaitFor(b, func() bool { return len(slk.Messages("C0CHMEDIC1")) == 1 }, 30*time.Second)
	var third []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		time.Sleep(3100 * time.Millisecond) // the bucket refills
		before := len(slk.Messages("C0CHMEDIC1"))
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for j := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				postWebhook(b, url, payload(fmt.Sprintf("burst-%d-%d-%d", time.Now().UnixNano(), i, j)))
			}()
		}
		wg.Wait()
		for len(slk.Messages("C0CHMEDIC1")) < before+3 {
			if time.Since(start) > 30*time.Second {
				b.Fatal("3 messages not posted within 30s")
			}
			time.Sleep(time.Millisecond)
		}
		third = append(third, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(percentile(third, 50), "third-p50-ms")
	b.ReportMetric(percentile(third, 99), "third-p99-ms")
}

var incidentCount = regexp.MustCompile(`Incident: (\d+) alert groups`)

// BenchmarkStormFoldingToSlack: with the default folding (storm_threshold
// 3, storm_window 2m), the default coalescing (3s) and the diagnosis cache
// on, 20 alert groups of one cluster arrive in 10 s (one per 500 ms). Per
// storm: the latency to the first message, and for every group the time
// from its webhook until Slack reflects it — its own message for the first
// storm_threshold−1, else the incident message counting it — reported as
// the worst and the p50 over the groups; and the Slack calls made.
//
//	go test ./internal/app/ -run '^$' -bench StormFoldingToSlack -benchtime 2x
func BenchmarkStormFoldingToSlack(b *testing.B) {
	var firsts, worst, p50s []time.Duration
	calls := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, slk := startAppSlack(b, "15s", "")
		url := "http://" + a.Addr() + "/webhook"
		b.StartTimer()
		const groups = 20
		sent := make([]time.Time, groups)
		seen := make([]time.Time, groups)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for time.Since(sent[0]) < 40*time.Second {
				now := time.Now()
				msgs := slk.Messages("C0CHMEDIC1")
				top := 0
				count := 0
				for _, m := range msgs {
					if m.ThreadTS != "" && m.ThreadTS != m.TS {
						continue
					}
					if mm := incidentCount.FindStringSubmatch(m.Text); mm != nil {
						count, _ = strconv.Atoi(mm[1])
					} else {
						top++
					}
				}
				all := true
				for g := range groups {
					if sent[g].IsZero() {
						all = false
						continue
					}
					if seen[g].IsZero() && (g < top || (g >= 2 && count >= g-1)) {
						seen[g] = now
					}
					all = all && !seen[g].IsZero()
				}
				if all {
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		for g := range groups {
			sent[g] = time.Now()
			postWebhook(b, url, payload(fmt.Sprintf("storm-%d-%d", i, g)))
			if g < groups-1 {
				time.Sleep(500 * time.Millisecond)
			}
		}
		<-done
		b.StopTimer()
		var lat []time.Duration
		for g := range groups {
			if seen[g].IsZero() {
				b.Fatalf("group %d not reflected in Slack within 40s", g)
			}
			lat = append(lat, seen[g].Sub(sent[g]))
		}
		firsts = append(firsts, lat[0])
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		worst = append(worst, lat[len(lat)-1])
		p50s = append(p50s, lat[len(lat)/2])
		calls += slk.CallCount("chat.postMessage") + slk.CallCount("chat.update")
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(percentile(firsts, 50), "first-ms")
	b.ReportMetric(percentile(p50s, 50), "reflected-p50-ms")
	b.ReportMetric(percentile(worst, 99), "reflected-max-ms")
	b.ReportMetric(float64(calls)/float64(b.N), "slack-calls")
}

// BenchmarkStorm1000ToSlack: 1,000 alert groups of one cluster arrive in
// about 10 s (4 senders, retrying on 503 as Alertmanager does) with the
// default folding, coalescing and summaries. Reports the time from the
// last webhook accepted until the incident message counts every folded
// group, the time until every notification is processed, and the Slack
// calls made meanwhile (posts and updates).
//
//	go test ./internal/app/ -run '^$' -bench Storm1000ToSlack -benchtime 1x
func BenchmarkStorm1000ToSlack(b *testing.B) {
	const groups, senders = 1000, 4
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, slk := startAppSlack(b, "15s", "")
		url := "http://" + a.Addr() + "/webhook"
		b.StartTimer()
		var wg sync.WaitGroup
		start := time.Now()
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for g := s; g < groups; g += senders {
					if wait := time.Until(start.Add(time.Duration(g) * 10 * time.Millisecond)); wait > 0 {
						time.Sleep(wait)
					}
					body := payload(fmt.Sprintf("s1k-%d-%d", i, g))
					for {
						resp, err := http.Post(url, "application/json", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
						time.Sleep(50 * time.Millisecond) // 503: the queue is full
					}
				}
			}()
		}
		wg.Wait()
		last := time.Now()
		var reflected time.Duration
		var own int
		for {
			// The groups that got their own message (storm_threshold − 1,
			// more while the folding races) are not in the incident.
			n := 0
			own = 0
			for _, m := range slk.Messages("C0CHMEDIC1") {
				if m.ThreadTS != "" && m.ThreadTS != m.TS {
					continue
				}
				if mm := incidentCount.FindStringSubmatch(m.Text); mm != nil {
					n, _ = strconv.Atoi(mm[1])
				} else {
					own++
				}
			}
			want := groups - own
			if n >= want {
				reflected = time.Since(last)
				break
			}
			if time.Since(last) > 5*time.Minute {
				b.Fatalf("the incident counts %d of %d groups 5 minutes after the last webhook", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(last.Sub(start).Milliseconds()), "send-ms")
		b.ReportMetric(float64(reflected.Milliseconds()), "last-reflected-ms")
		b.ReportMetric(float64(slk.CallCount("chat.postMessage")+slk.CallCount("chat.update")), "slack-calls")
		b.ReportMetric(float64(own), "group-messages")
	}
}
