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

// distance is the Levenshtein distance of a and b (insertions, deletions,
// substitutions), or limit when it is limit or more: names are short, so
// one row of the table is enough and pairs far apart in length stop early.
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := row[0] // row[i-1][j-1]
		row[0] = i
		low := row[0]
		for j := 1; j <= len(b); j++ {
			cur := row[j]
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			row[j] = min(row[j]+1, row[j-1]+1, prev+cost)
			prev = cur
			low = min(low, row[j])
		}
		if low >= limit {
			return limit
		}
	}
	return min(row[len(b)], limit)
}
