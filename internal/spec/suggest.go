package spec

// Suggest returns the candidate closest to word within an edit distance of
// 2 (the first of equals, in the candidates' order), or "" when none is: the
// "did you mean" of an unknown key or service name. When word is itself a
// candidate there is nothing to suggest.
func Suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if c == word {
			return ""
		}
		if d := distance(word, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the edit distance of a and b (insertions, deletions,
// substitutions, and swaps of two neighbours: "stauts" is one swap from
// "status", which plain Levenshtein counts as two and ties with "start"),
// or limit when it is limit or more. Names are short: the whole table is
// cheap, and pairs far apart in length stop at once.
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev2 := make([]int, len(b)+1) // row i-2
	prev := make([]int, len(b)+1)  // row i-1
	row := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		row[0] = i
		low := row[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			row[j] = min(prev[j]+1, row[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				row[j] = min(row[j], prev2[j-2]+1)
			}
			low = min(low, row[j])
		}
		if low >= limit {
			return limit
		}
		prev2, prev, row = prev, row, prev2
	}
	return min(prev[len(b)], limit)
}
