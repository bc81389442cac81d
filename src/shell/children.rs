//! Child processes for different kernels (depmod, dracut) run side by side, at most as many at
//! once as there are cores, with what each prints kept together and shown in kernel order.
//!
//! The calling thread starts and reaps every child itself, in job order: a kill of this
//! process at any instant leaves each job either not started, running on its own (its kernel's
//! record still says the work is owed, so the next run repeats it), or finished and recorded.
//! Only the reading of each child's output is left to helper threads, so that a child that
//! prints a lot never blocks on a full pipe while an earlier one is being waited for.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Where the children's output goes.
pub struct Output<'a> {
    pub stdout: Box<dyn Write + 'a>,
    pub stderr: Box<dyn Write + 'a>,
}

impl Output<'static> {
    /// Our own stdout and stderr.
    pub fn ours() -> Self {
        Output {
            stdout: Box::new(io::stdout()),
            stderr: Box::new(io::stderr()),
        }
    }
}

/// Runs every command, at most `limit` at once, in order of the slice. After job `i` ends, its
/// stdout and stderr are written to `output` and `finished(i, status)` is called, before job
/// `i + 1` is looked at; a job that cannot be started reports the spawn error there.
pub fn run_side_by_side(
    commands: Vec<Command>,
    limit: usize,
    mut output: Output<'_>,
    mut finished: impl FnMut(usize, io::Result<ExitStatus>),
) {
    let limit = limit.max(1);
    let _quiet = SigchldHeld::new();
    let mut waiting = commands.into_iter();
    let mut running: std::collections::VecDeque<io::Result<Running>> =
        std::collections::VecDeque::new();
    for command in waiting.by_ref().take(limit) {
        running.push_back(Running::start(command));
    }
    let mut index = 0;
    while let Some(next) = running.pop_front() {
        let status = next.and_then(|job| job.finish(&mut output));
        if let Some(command) = waiting.next() {
            running.push_back(Running::start(command));
        }
        finished(index, status);
        index += 1;
    }
}

/// SIGCHLD held pending on this thread (and the reader threads it starts) while children are
/// run. Nothing of ours handles it; held, it cannot interrupt the `wait4` for an earlier child
/// when a later one ends first, so each child is reaped by exactly one `wait4`, as in a run
/// with one child at a time. Children start with an empty mask (the standard library resets
/// it), and the signal is let through again, and ignored as ever, when this is dropped.
struct SigchldHeld {
    before: Option<SigSet>,
}

impl SigchldHeld {
    fn new() -> Self {
        let mut before = SigSet::empty();
        let held = pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&SigSet::from(Signal::SIGCHLD)),
            Some(&mut before),
        );
        SigchldHeld {
            before: held.is_ok().then_some(before),
        }
    }
}

impl Drop for SigchldHeld {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(before), None);
        }
    }
}

struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Running {
    fn start(mut command: Command) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        match (drain(child.stdout.take()), drain(child.stderr.take())) {
            (Ok(stdout), Ok(stderr)) => Ok(Running {
                child,
                stdout,
                stderr,
            }),
            // No thread to read its output: the child is stopped, not left to block.
            (Err(err), _) | (_, Err(err)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    /// Waits for the child, then writes what it printed.
    fn finish(mut self, output: &mut Output<'_>) -> io::Result<ExitStatus> {
        let status = self.child.wait();
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        // Ours may be closed (a pipe whose reader went away); the child's status still counts.
        let _ = output.stdout.write_all(&stdout);
        let _ = output.stdout.flush();
        let _ = output.stderr.write_all(&stderr);
        status
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> io::Result<JoinHandle<Vec<u8>>> {
    std::thread::Builder::new().spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    type Ends = Vec<(usize, io::Result<ExitStatus>)>;

    fn run(commands: Vec<Command>, limit: usize) -> (Ends, Vec<u8>, Vec<u8>) {
        let (mut stdout, mut stderr, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        let output = Output {
            stdout: Box::new(&mut stdout),
            stderr: Box::new(&mut stderr),
        };
        run_side_by_side(commands, limit, output, |index, status| {
            ends.push((index, status))
        });
        (ends, stdout, stderr)
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    #[test]
    fn jobs_run_side_by_side_and_their_output_comes_in_order() {
        let started = Instant::now();
        let (ends, stdout, stderr) = run(
            vec![
                shell("sleep 0.3; echo first; echo oops >&2"),
                shell("echo second; exit 3"),
                shell("echo third"),
            ],
            2,
        );
        let codes: Vec<_> = ends
            .into_iter()
            .map(|(index, status)| (index, status.unwrap().code()))
            .collect();
        assert_eq!(codes, [(0, Some(0)), (1, Some(3)), (2, Some(0))]);
        assert_eq!(stdout, b"first\nsecond\nthird\n");
        assert_eq!(stderr, b"oops\n");
        assert!(
            started.elapsed() < Duration::from_millis(550),
            "not in parallel"
        );
    }

    #[test]
    fn a_job_that_cannot_start_costs_only_itself() {
        let (ends, _, _) = run(
            vec![Command::new("/nonexistent/program"), shell("exit 0")],
            1,
        );
        let started: Vec<_> = ends
            .iter()
            .map(|(i, status)| (*i, status.is_ok()))
            .collect();
        assert_eq!(started, [(0, false), (1, true)]);
    }

    #[test]
    fn a_child_printing_more_than_a_pipe_holds_does_not_block_the_others() {
        let (ends, stdout, stderr) = run(
            vec![
                shell("sleep 0.2"),
                shell("head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero"),
            ],
            2,
        );
        assert!(
            ends.iter()
                .all(|(_, status)| status.as_ref().unwrap().success())
        );
        assert_eq!((stdout.len(), stderr.len()), (1_000_000, 1_000_000));
    }

    #[test]
    fn children_start_with_no_signal_held() {
        let (_, stdout, _) = run(vec![shell("grep SigBlk /proc/self/status")], 1);
        assert_eq!(
            String::from_utf8(stdout).unwrap().trim(),
            "SigBlk:\t0000000000000000"
        );
    }
}
