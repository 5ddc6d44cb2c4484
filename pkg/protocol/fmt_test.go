package protocol_test

import "fmt"

func fmtSprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
