package budget

// SimulateCrash releases what the operating system releases when the process dies (the
// ledger file lock) without flushing, so a test can reopen the file as a restart would.
func SimulateCrash(e *EmbeddedLedger) { e.unlock() }
