package storage

// checkPart placeholder
func checkPart(path string) error { return nil }
