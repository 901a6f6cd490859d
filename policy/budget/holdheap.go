package budget

// holdHeap is a min-heap of holds by deadline; each hold knows its index, so a settled hold
// is removed in O(log n).
type holdHeap []*hold

func (q *holdHeap) push(h *hold) {
	h.index = len(*q)
	*q = append(*q, h)
	q.up(h.index)
}

func (q *holdHeap) remove(i int) {
	s := *q
	last := len(s) - 1
	if i != last {
		s[i], s[last] = s[last], s[i]
		s[i].index = i
	}
	s[last] = nil
	*q = s[:last]
	if i != last && !q.down(i) {
		q.up(i)
	}
}

func (q holdHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if q[p].deadline <= q[i].deadline {
			return
		}
		q.swap(i, p)
		i = p
	}
}

// down sifts i toward the leaves and reports whether it moved.
func (q holdHeap) down(i int) bool {
	i0 := i
	for {
		l := 2*i + 1
		if l >= len(q) {
			break
		}
		j := l
		if r := l + 1; r < len(q) && q[r].deadline < q[l].deadline {
			j = r
		}
		if q[i].deadline <= q[j].deadline {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i != i0
}

func (q holdHeap) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
