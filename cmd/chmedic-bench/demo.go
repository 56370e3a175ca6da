package main
func demoMain(args []string) int { return 0 }
