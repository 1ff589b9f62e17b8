// Hello from Go: the runtime starts its threads, timers and I/O completion port before main.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from go")
	os.Exit(3)
}
