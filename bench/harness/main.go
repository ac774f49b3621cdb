// Command harness times shell commands side by side: warm-up runs first,
// then interleaved repetitions (A B C A B C ...) so that drift in the
// machine's load hits every contender alike. It prints medians, min and max,
// and each contender's ratio to a reference (stint).
//
//	harness -reps 30 -warmup 3 -ref stint-btrfs 'floor=bench/anchors/floor.sh' 'stint-btrfs=...'
//
// With -throughput N -parallel P it instead runs each command N times, P at
// once, and reports jobs per minute (-per K: each run stands for K jobs).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
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
	ref := flag.String("ref", "", "the contender others are compared with")
	throughput := flag.Int("throughput", 0, "if > 0: jobs per contender for a throughput run")
	parallel := flag.Int("parallel", 4, "concurrency of the throughput run")
	per := flag.Int("per", 1, "jobs one run of a command stands for (a `stint run -j 4` of 40 jobs: 40)")
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
		runThroughput(cs, *throughput, *parallel, *per)
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
	report(cs, *ref)
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

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func report(cs []*contender, ref string) {
	var refMed time.Duration
	for _, c := range cs {
		if c.name == ref {
			refMed = median(c.samples)
		}
	}
	ratioHead := "ratio"
	if ref != "" {
		ratioHead = "ratio to " + ref
	}
	fmt.Printf("| %-32s | %10s | %9s | %9s | %5s | %s |\n", "contender", "median ms", "min ms", "max ms", "fails", ratioHead)
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 34), strings.Repeat("-", 12), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 7), strings.Repeat("-", 12))
	for _, c := range cs {
		if len(c.samples) == 0 {
			fmt.Printf("| %-32s | %10s | %9s | %9s | %5d | %s |\n", c.name, "-", "-", "-", c.failures, "-")
			continue
		}
		lo, hi := c.samples[0], c.samples[0]
		for _, d := range c.samples {
			lo, hi = min(lo, d), max(hi, d)
		}
		ratio := "-"
		if refMed > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(median(c.samples))/float64(refMed))
		}
		fmt.Printf("| %-32s | %10s | %9s | %9s | %5d | %s |\n", c.name, ms(median(c.samples)), ms(lo), ms(hi), c.failures, ratio)
	}
}

func runThroughput(cs []*contender, n, p, per int) {
	fmt.Printf("| %-32s | %12s | %8s | %5s |\n", "contender", "jobs/min", "wall s", "fails")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 34), strings.Repeat("-", 14), strings.Repeat("-", 10), strings.Repeat("-", 7))
	for _, c := range cs {
		var wg sync.WaitGroup
		var mu sync.Mutex
		fails := 0
		next := make(chan int)
		start := time.Now()
		for w := 0; w < p; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					cmd := strings.ReplaceAll(c.cmd, "{i}", fmt.Sprint(i))
					if _, err := once(cmd); err != nil {
						mu.Lock()
						fails++
						mu.Unlock()
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		wall := time.Since(start)
		fmt.Printf("| %-32s | %12.0f | %8.2f | %5d |\n", c.name, float64((n-fails)*per)/wall.Minutes(), wall.Seconds(), fails)
	}
}
