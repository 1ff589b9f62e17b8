// Goroutines and channels, a timer, and file I/O in a temporary directory; exits 7.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

func worker(id int, jobs <-chan int, results chan<- string, wg *sync.WaitGroup) {
	defer wg.Done()
	for j := range jobs {
		sum := 0
		for i := 0; i <= j*100000; i++ {
			sum += i % 7
		}
		results <- fmt.Sprintf("job %d sum %d", j, sum)
	}
}

func main() {
	jobs := make(chan int, 16)
	results := make(chan string, 16)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go worker(w, jobs, results, &wg)
	}
	for j := 1; j <= 12; j++ {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	close(results)
	var lines []string
	for r := range results {
		lines = append(lines, r)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	timer := time.After(20 * time.Millisecond)
	<-timer
	fmt.Println("timer fired")
	// file I/O
	dir, err := os.MkdirTemp(".", "gotmp")
	if err != nil {
		fmt.Println("mkdirtemp:", err)
		os.Exit(1)
	}
	p := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(p, []byte("line one\nline two\n"), 0o644); err != nil {
		fmt.Println("write:", err)
		os.Exit(1)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(1)
	}
	fmt.Printf("read %d bytes: %q\n", len(b), b)
	st, _ := os.Stat(p)
	fmt.Println("size", st.Size(), "dir", st.IsDir())
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println("entry", e.Name())
	}
	os.RemoveAll(dir)
	_, err = os.Stat(dir)
	fmt.Println("removed", os.IsNotExist(err))
	fmt.Println("args", len(os.Args), os.Args[1:])
	os.Exit(7)
}
