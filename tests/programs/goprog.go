// A static Go program: goroutines, channels, a timer, os/exec of /bin/true and file I/O.
// Go's runtime starts many threads and uses signals (preemption), so this exercises both.
// Usage: goprog DIR   (DIR: a scratch directory)
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goprog DIR")
		os.Exit(2)
	}
	dir := os.Args[1]

	// goroutines and channels: a fan-out / fan-in sum
	jobs := make(chan int)
	results := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s := 0
				for k := 0; k <= j; k++ {
					s += k * k
				}
				results <- s
			}
		}()
	}
	go func() {
		for j := 0; j < 1000; j++ {
			jobs <- j
		}
		close(jobs)
	}()
	go func() { wg.Wait(); close(results) }()
	total := 0
	n := 0
	for r := range results {
		total += r
		n++
	}
	fmt.Printf("goroutines: %d results, total %d\n", n, total)

	// a timer and a select
	start := time.Now()
	timer := time.NewTimer(30 * time.Millisecond)
	select {
	case <-timer.C:
		fmt.Printf("timer fired after >= 30ms: %v\n", time.Since(start) >= 30*time.Millisecond)
	case <-time.After(10 * time.Second):
		fmt.Println("timer did not fire")
	}

	// os/exec of /bin/true and of /bin/false
	err := exec.Command("/bin/true").Run()
	fmt.Printf("exec /bin/true: err=%v\n", err)
	err = exec.Command("/bin/false").Run()
	if ee, ok := err.(*exec.ExitError); ok {
		fmt.Printf("exec /bin/false: exit %d\n", ee.ExitCode())
	} else {
		fmt.Printf("exec /bin/false: %v\n", err)
	}

	// file I/O
	for i := 0; i < 3; i++ {
		name := filepath.Join(dir, fmt.Sprintf("go-%d.txt", i))
		if err := os.WriteFile(name, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			fmt.Println("write:", err)
			os.Exit(1)
		}
	}
	entries, _ := os.ReadDir(dir)
	names := []string{}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		names = append(names, fmt.Sprintf("%s=%q", e.Name(), data))
	}
	sort.Strings(names)
	fmt.Println("files:", names)
	_, err = os.ReadFile(filepath.Join(dir, "missing"))
	fmt.Println("missing:", os.IsNotExist(err))
	fmt.Fprintln(os.Stderr, "goprog done")
	os.Exit(5)
}
