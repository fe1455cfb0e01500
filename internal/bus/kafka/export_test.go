package kafka

// CloseConsumerClient closes the client under the running subscription
// named name, as a lost connection or a client shut down underneath would:
// its poll loop ends without ctx being done. false when there is none.
func CloseConsumerClient(b *Bus, name string) bool {
	var w *watched
	for _, x := range b.watched.All() {
		if x.name == name {
			w = x
		}
	}
	if w == nil {
		return false
	}
	w.mu.Lock()
	cl := w.cl
	w.mu.Unlock()
	if cl == nil {
		return false
	}
	cl.Close()
	return true
}
