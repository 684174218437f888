//! The `tinytrain-sim` command line: see `tinytrain-sim --help`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tinytrain_sim::cli::{self, Cli};

/// Stack of the worker thread. Training state is boxed, but `Box::new(Trainer::ZERO)` builds
/// the value on the stack first in unoptimised builds, so the stack must hold the largest
/// model's training state (with room to spare); the memory is only reserved, not used.
const WORKER_STACK: usize = 256 << 20;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{at}: {}", msg.replace('\n', " "));
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    eprintln!("{}", cli::error_line(&e));
                    ExitCode::from(2)
                }
            };
        }
    };

    let worker = std::thread::Builder::new().name("tinytrain-sim".into()).stack_size(WORKER_STACK).spawn(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let result = cli::run(&cli, &mut out);
        let _ = out.flush();
        result
    });
    let result = match worker {
        Ok(handle) => match handle.join() {
            Ok(result) => result,
            // The panic hook has already printed the one-line message.
            Err(_) => return ExitCode::from(101),
        },
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the worker thread")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): stop quietly, as a shell pipeline expects.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
