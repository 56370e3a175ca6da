// Package keeper owns every conversation chmedic has with a coordination
// node: ZooKeeper (3.4 through 3.8+) and ClickHouse Keeper. It speaks only
// the "four-letter word" (4lw) admin protocol on the client port, and it
// parses the answers into typed values.
//
// # Why so careful
//
// chmedic calls this package exactly when the coordination service is
// choking, so everything here is bounded and cheap:
//
//   - one TCP connection per command (the server closes it after
//     answering), bounded by a per-command timeout (default 2s, and never
//     later than the caller's context deadline) and by a maximum response
//     size (default 4 MiB);
//   - only read-only, cheap commands can be sent (see [SupportedCommands]):
//     wchc, wchp and dump walk every watch or session while holding the
//     server's internal locks and can produce megabytes of output on a big
//     ensemble, so they are refused before anything is sent; srst, crst and
//     the ClickHouse Keeper management words (rcvr, csnp, ydld, rqld, ...)
//     change server state and are refused too;
//   - [Client.Snapshot] runs the requested commands sequentially against one
//     node (never in parallel) and stops talking to a node as soon as it is
//     found unreachable or hung, so a dead node costs one timeout, not one
//     per command.
//
// # Errors
//
// [Client.Command] returns a *[Error] that unwraps to one sentinel
// describing what happened ([ErrUnreachable], [ErrTimeout],
// [ErrNotWhitelisted], [ErrNotServing], [ErrNoAnswer], [ErrResponseTooLarge],
// [ErrInvalidCommand], [ErrInvalidAddress], or context.Canceled) and to the
// underlying network error, so both errors.Is(err, keeper.ErrTimeout) and
// errors.Is(err, syscall.ECONNREFUSED) work. The text received so far is
// returned alongside the error whenever there is any.
//
// # Parsers
//
// The Parse* functions are pure: they take the text a server printed and
// return typed values. They accept \n or \r\n line ends, tabs or spaces
// between keys and values, missing keys and unknown keys (kept in Raw maps),
// and the format differences between ZooKeeper 3.4, 3.5, 3.6+ and ClickHouse
// Keeper. Format facts worth knowing, all checked against the servers'
// source or a real ZooKeeper 3.8.0:
//
//   - ZooKeeper 3.4 and 3.5 print integer latencies; 3.6+ print the average
//     as a double ("0.0", "3.1538"). All latencies are returned as float64
//     milliseconds.
//   - ZooKeeper 3.6+ leaders print zk_learners instead of zk_followers;
//     [Mntr.Followers] falls back to it.
//   - The version printed by Debian's ZooKeeper 3.8 contains a literal,
//     unexpanded "${mvngit.commit.id}"; 3.6 releases print a double dash
//     ("3.6.3--6401e4ad..."). [CleanVersion] and [ReleaseVersion] tidy both.
//   - Old ClickHouse Keeper prints "Zxid: 34" (decimal) in srvr, newer
//     releases "Zxid: 0x22" (hex like ZooKeeper); both are accepted.
//   - ZooKeeper answers a command missing from 4lw.commands.whitelist with
//     "<cmd> is not executed because it is not in the whitelist."; ClickHouse
//     Keeper closes the connection without a byte for a command missing from
//     four_letter_word_white_list ([ErrNoAnswer]).
//   - Because of that difference, an empty answer reads per kind
//     ([CommandResult.Refused]): a whitelist refusal on ClickHouse Keeper,
//     the connection limit or an error state on ZooKeeper. Any answer, a
//     refusal text included, proves the process is up
//     ([Snapshot.Liveness]).
//   - ClickHouse Keeper prints every mntr figure unsigned; a
//     max_file_descriptor_count it cannot read prints as -1 cast to
//     uint64, 18446744073709551615 ([Mntr.MaxFileDescriptorsUnlimited]).
//   - isro answers "ro" on ZooKeeper in read-only mode (no quorum), but on
//     ClickHouse Keeper for an observer, a normal non-voting member.
//   - A ZooKeeper that lost quorum answers most words with "This ZooKeeper
//     instance is not currently serving requests" (ClickHouse Keeper: "This
//     instance is not currently serving requests"), and isro with "null";
//     these map to [ErrNotServing]. ruok still answers "imok" then, so imok
//     only proves the process is alive.
//   - In cons, ZooKeeper prints the client as a Java InetSocketAddress:
//     "/10.0.0.1:52852[1](...)" where [1] is the NIO interest-ops set; IPv6
//     clients print as "/0:0:0:0:0:0:0:1:52852" on Java <= 13 and as
//     "/[0:0:0:0:0:0:0:1]:52852" on Java 14+ (measured on Java 17).
//     ClickHouse Keeper prints " 192.168.1.1:52042(recved=...)" or
//     " [::1]:52042(...)". The 4lw connection that asked is itself listed,
//     without a session id.
//   - cons "lresp" is epoch milliseconds on ClickHouse Keeper but a
//     monotonic clock reading (not a wall time) on ZooKeeper >= 3.4.6; only
//     "est" is a wall-clock time on both.
package keeper
