// A goroutine spinning in a loop without calls can only be stopped by asynchronous preemption
// (Go's sysmon: SuspendThread, GetThreadContext, SetThreadContext, ResumeThread); runtime.GC
// must stop it, so without preemption the program never ends.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

var counter uint64

func spin() {
	for {
		counter++
	}
}

func main() {
	runtime.GOMAXPROCS(2)
	go spin()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	fmt.Println("gc done while a goroutine spins")
	os.Exit(5)
}
