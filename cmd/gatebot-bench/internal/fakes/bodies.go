package fakes

// DropBody forgets the request body of call i (as counted by Wait) of
// conversation id, keeping every other field (op, ids, time, status, body
// hash), so a long run of replies nobody reads again does not hold every
// card in memory. Only that Call.Body becomes nil; out-of-range i is
// ignored.
func (c *Connector) DropBody(id string, i int) {
	cv := c.conv(id)
	cv.mu.Lock()
	defer cv.mu.Unlock()
	if i >= 0 && i < len(cv.calls) {
		cv.calls[i].Body = nil
	}
}
