package output

import (
	"runtime"
	"sync"
)

// encodeBlock is how many elements one goroutine encodes at a time: big
// enough that handing blocks around costs nothing beside the encoding,
// small enough that the blocks in flight stay a few megabytes.
const encodeBlock = 1024

// AddAll writes elements 0 to n-1 of an array, elem(i) giving element i,
// in order, as n calls of Add would, but encodes them on every CPU: a
// 100,000-row `status --json` spent a fifth of its time encoding on one
// core while the other idled. elem is called from several goroutines at
// once, each i once. A failed write stops the encoding; Close reports it.
func (a *JSONArrayWriter) AddAll(n int, elem func(i int) JSONAppender) error {
	workers := min(runtime.GOMAXPROCS(0), (n+encodeBlock-1)/encodeBlock)
	if workers <= 1 {
		for i := range n {
			if err := a.Add(elem(i)); err != nil {
				return err
			}
		}
		return nil
	}
	type block struct {
		start, end int
		done       chan []byte
	}
	// Blocks go to the encoders and, in the same order, to the writer,
	// which waits for each in turn; the queue's capacity bounds how far
	// the encoders run ahead, and written buffers are reused.
	jobs := make(chan block)
	queue := make(chan block, 2*workers)
	free := make(chan []byte, 3*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var compact []byte
			for b := range jobs {
				var out []byte
				select {
				case out = <-free:
				default:
				}
				for i := b.start; i < b.end; i++ {
					out = append(out, ",\n  "...)
					e := elem(i)
					if ie, ok := e.(JSONIndentAppender); ok {
						out = ie.AppendJSONIndent(out, "  ", "  ")
						continue
					}
					compact = e.AppendJSON(compact[:0])
					out = indentJSON(out, compact, "  ", "  ")
				}
				b.done <- out
			}
		})
	}
	go func() {
		defer close(queue)
		defer close(jobs)
		for start := 0; start < n; start += encodeBlock {
			b := block{start, min(start+encodeBlock, n), make(chan []byte, 1)}
			select {
			case queue <- b:
			case <-stop:
				return
			}
			jobs <- b
		}
	}()
	failed := false
	for b := range queue {
		out := <-b.done
		if failed {
			continue // drained so every goroutine ends
		}
		if a.n == 0 {
			out[0] = '[' // the first element opens the array: "[\n  "
		}
		a.n += b.end - b.start
		if _, err := a.bw.Write(out); err != nil {
			failed = true
			close(stop)
		}
		select {
		case free <- out[:0]:
		default:
		}
	}
	wg.Wait()
	return nil
}
