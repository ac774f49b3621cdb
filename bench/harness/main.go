// Command harness times shell commands side by side: warm-up runs first,
// then interleaved repetitions (A B C A B C ...) so that drift in the
// machine's load hits every contender alike. It prints medians, min, p95 and
// max, and each contender's median as a ratio to the median of each
// reference (-ref, repeatable: one ratio column per reference).
//
//	harness -reps 30 -warmup 3 -ref floor -ref lxc 'floor=bench/anchors/floor.sh' 'lxc=...' 'stint=...'
//
// With -throughput N -parallel P it instead runs each command N times, P at
// once, and reports jobs per minute; a contender named by -batch runs once
// and stands for all N jobs (a `stint run -j 4` of a 40-job matrix).
// -rounds R repeats the whole set R times, interleaved, and reports the
// median round.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

type contender struct {
	name, cmd string
	samples   []time.Duration
	failures  int
}

func main() {
	reps := flag.Int("reps", 20, "timed repetitions per contender")
	warmup := flag.Int("warmup", 3, "untimed runs per contender first")
	var refs refList
	flag.Var(&refs, "ref", "a contender the others are compared with (repeatable: one ratio column each)")
	throughput := flag.Int("throughput", 0, "if > 0: jobs per contender for a throughput run")
	parallel := flag.Int("parallel", 4, "concurrency of the throughput run")
	rounds := flag.Int("rounds", 1, "throughput: rounds over all contenders, interleaved (the median round is reported)")
	var batch refList
	flag.Var(&batch, "batch", "throughput: a contender that runs once for all the jobs (repeatable)")
	flag.Parse()

	var cs []*contender
	for _, a := range flag.Args() {
		name, cmd, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "harness: %q is not name=command\n", a)
			os.Exit(2)
		}
		cs = append(cs, &contender{name: name, cmd: cmd})
	}
	if *throughput > 0 {
		runThroughput(cs, throughputRun{n: *throughput, p: *parallel, rounds: *rounds, batch: batch, refs: refs})
		return
	}
	for _, c := range cs {
		for i := 0; i < *warmup; i++ {
			if _, err := once(c.cmd); err != nil {
				fmt.Fprintf(os.Stderr, "harness: warm-up of %s failed: %v\n", c.name, err)
			}
		}
	}
	for i := 0; i < *reps; i++ {
		for _, c := range cs {
			d, err := once(c.cmd)
			if err != nil {
				c.failures++
				fmt.Fprintf(os.Stderr, "harness: %s: %v\n", c.name, err)
				continue
			}
			c.samples = append(c.samples, d)
		}
	}
	report(cs, refs)
}

func once(cmd string) (time.Duration, error) {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Stdout, c.Stderr = nil, os.Stderr
	start := time.Now()
	err := c.Run()
	return time.Since(start), err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// refList is the repeatable -ref flag.
type refList []string

func (r *refList) String() string { return strings.Join(*r, ", ") }

func (r *refList) Set(v string) error { *r = append(*r, v); return nil }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// percentile is the nearest-rank p-th percentile (p in 0..100) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

func report(cs []*contender, refs []string) {
	refMed := make([]time.Duration, len(refs))
	for i, ref := range refs {
		for _, c := range cs {
			if c.name == ref {
				refMed[i] = median(c.samples)
			}
		}
		if refMed[i] == 0 {
			fmt.Fprintf(os.Stderr, "harness: reference %q has no samples\n", ref)
		}
	}
	head := fmt.Sprintf("| %-40s | %9s | %8s | %8s | %8s | %5s |", "contender", "median ms", "min ms", "p95 ms", "max ms", "fails")
	rule := fmt.Sprintf("|%s|%s|%s|%s|%s|%s|", dashes(42), dashes(10)+":", dashes(9)+":", dashes(9)+":", dashes(9)+":", dashes(6)+":")
	for i := range refs {
		head += fmt.Sprintf(" %8s |", fmt.Sprintf("ratio %c", 'A'+i))
		rule += dashes(9) + ":|"
	}
	fmt.Println(head)
	fmt.Println(rule)
	for _, c := range cs {
		if len(c.samples) == 0 {
			line := fmt.Sprintf("| %-40s | %9s | %8s | %8s | %8s | %5d |", c.name, "-", "-", "-", "-", c.failures)
			for range refs {
				line += fmt.Sprintf(" %8s |", "-")
			}
			fmt.Println(line)
			continue
		}
		lo, hi := c.samples[0], c.samples[0]
		for _, d := range c.samples {
			lo, hi = min(lo, d), max(hi, d)
		}
		med := median(c.samples)
		line := fmt.Sprintf("| %-40s | %9s | %8s | %8s | %8s | %5d |", c.name, ms(med), ms(lo), ms(percentile(c.samples, 95)), ms(hi), c.failures)
		for i := range refs {
			r := "-"
			if refMed[i] > 0 {
				r = fmt.Sprintf("%.2fx", float64(med)/float64(refMed[i]))
			}
			line += fmt.Sprintf(" %8s |", r)
		}
		fmt.Println(line)
	}
	for i, ref := range refs {
		fmt.Printf("- ratio %c: median ÷ the median of %s\n", 'A'+i, ref)
	}
}

func dashes(n int) string { return strings.Repeat("-", n) }

// throughputRun is the shape of a throughput measurement.
type throughputRun struct {
	n, p, rounds int
	batch        []string // contenders that run once, standing for n jobs
	refs         []string
}

func runThroughput(cs []*contender, t throughputRun) {
	rates := make([][]float64, len(cs))
	fails := make([]int, len(cs))
	for range max(t.rounds, 1) {
		for k, c := range cs {
			runs, jobs := t.n, 1
			if slices.Contains(t.batch, c.name) {
				runs, jobs = 1, t.n
			}
			wall, failed := parallelRuns(c.cmd, runs, t.p)
			fails[k] += failed
			rates[k] = append(rates[k], float64((runs-failed)*jobs)/wall.Minutes())
		}
	}
	medRate := func(k int) float64 {
		r := append([]float64(nil), rates[k]...)
		sort.Float64s(r)
		return r[len(r)/2] // the median round (the upper one of two)
	}
	head := fmt.Sprintf("| %-40s | %9s | %8s | %8s | %5s |", "contender", "jobs/min", "min", "max", "fails")
	rule := fmt.Sprintf("|%s|%s|%s|%s|%s|", dashes(42), dashes(10)+":", dashes(9)+":", dashes(9)+":", dashes(6)+":")
	for i := range t.refs {
		head += fmt.Sprintf(" %8s |", fmt.Sprintf("ratio %c", 'A'+i))
		rule += dashes(9) + ":|"
	}
	fmt.Println(head)
	fmt.Println(rule)
	for k, c := range cs {
		lo, hi := slices.Min(rates[k]), slices.Max(rates[k])
		line := fmt.Sprintf("| %-40s | %9.0f | %8.0f | %8.0f | %5d |", c.name, medRate(k), lo, hi, fails[k])
		for _, ref := range t.refs {
			r := "-"
			if j := slices.IndexFunc(cs, func(c *contender) bool { return c.name == ref }); j >= 0 && medRate(j) > 0 {
				r = fmt.Sprintf("%.2fx", medRate(k)/medRate(j))
			}
			line += fmt.Sprintf(" %8s |", r)
		}
		fmt.Println(line)
	}
	fmt.Printf("- %d jobs per contender and round, %d at once; %d round(s), interleaved; min and max are the rounds'\n", t.n, t.p, max(t.rounds, 1))
	for i, ref := range t.refs {
		fmt.Printf("- ratio %c: jobs/min ÷ the jobs/min of %s (above 1: faster)\n", 'A'+i, ref)
	}
}

// parallelRuns runs cmd n times, p at once ({i} in cmd is the run's
// index), and returns the wall time and the number of failed runs.
func parallelRuns(cmd string, n, p int) (time.Duration, int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := 0
	next := make(chan int)
	start := time.Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := once(strings.ReplaceAll(cmd, "{i}", fmt.Sprint(i))); err != nil {
					mu.Lock()
					fails++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(start), fails
}
