//! Never lose a run: `train --checkpoint F` writes training checkpoints, and `train --resume F`
//! goes on from the last one. Killed with SIGKILL at random points 50 times and resumed each
//! time, a run ends with a weights file byte-identical to a run that was never interrupted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{data_dir, scratch, sim};

const KILLS: usize = 50;

/// The run's options: digits-mlp with a validation split and early stopping, so that the
/// early-stopping state and the best-weights snapshot must survive the kills too.
fn options(data: &str, epochs: u32, seed: u32) -> Vec<String> {
    let (epochs, seed) = (epochs.to_string(), seed.to_string());
    ["train", "digits-mlp", "--epochs", &epochs, "--seed", &seed, "--validation-split", "0.2", "--patience", "200"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--data".to_owned(), data.to_owned(), "--no-progress".to_owned()])
        .collect()
}

#[test]
fn fifty_sigkills_and_resumes_give_the_uninterrupted_weights() {
    let dir = scratch("resume-kills");
    let data = data_dir().to_str().unwrap().to_owned();
    let reference = dir.join("reference.ttw");
    let mut args = options(&data, 150, 3);
    args.extend(["--save".to_owned(), reference.to_str().unwrap().to_owned()]);
    let run = sim(&args);
    assert!(run.ok, "{}", run.stderr);

    let (checkpoint, resumed) = (dir.join("run.tt"), dir.join("resumed.ttw"));
    let mut base = options(&data, 150, 3);
    base.extend(["--save", resumed.to_str().unwrap(), "--checkpoint-every", "10"].map(str::to_owned));
    base.extend(["--checkpoint".to_owned(), checkpoint.to_str().unwrap().to_owned()]);
    let with_resume = |args: &[String]| {
        let mut a = args.to_vec();
        if checkpoint.exists() {
            a.extend(["--resume".to_owned(), checkpoint.to_str().unwrap().to_owned()]);
        }
        a
    };
    // Random kill times from a fixed generator: 15 to 90 ms after the start.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut kills = 0;
    let mut finished_early = 0;
    while kills < KILLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(15 + x % 76);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tinytrain-sim"))
            .args(with_resume(&base))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_some() {
            // The run finished before its kill: start over, so that every kill lands in a run.
            finished_early += 1;
            assert!(finished_early < 5, "the run is too short to be killed {KILLS} times");
            std::fs::remove_file(&checkpoint).unwrap();
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let run = sim(&with_resume(&base));
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("resuming from"), "{}", run.stdout);
    let (a, b) = (std::fs::read(&reference).unwrap(), std::fs::read(&resumed).unwrap());
    assert!(a == b, "the resumed run's weights differ from the uninterrupted run's");
    println!("{kills} SIGKILLs, resumed each time: weights file byte-identical ({} bytes)", a.len());
}

#[test]
fn a_checkpoint_resumes_only_its_own_run() {
    let dir = scratch("resume-refusals");
    let data = data_dir().to_str().unwrap().to_owned();
    let checkpoint = dir.join("run.tt");
    let mut args = options(&data, 2, 3);
    args.extend(["--checkpoint", checkpoint.to_str().unwrap()].map(str::to_owned));
    assert!(sim(&args).ok);
    // Another seed is another run.
    let mut other = options(&data, 2, 4);
    other.extend(["--resume", checkpoint.to_str().unwrap()].map(str::to_owned));
    sim(&other).assert_one_line_error("other settings");
    // A corrupt checkpoint is refused and left as it was.
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&checkpoint, &bytes).unwrap();
    let mut same = options(&data, 2, 3);
    same.extend(["--resume", checkpoint.to_str().unwrap()].map(str::to_owned));
    sim(&same).assert_one_line_error("corrupt");
    assert_eq!(std::fs::read(&checkpoint).unwrap(), bytes);
    // Another model's checkpoint.
    let run = sim(&["train", "xor", "--resume", checkpoint.to_str().unwrap()]);
    run.assert_one_line_error("cannot resume");
}
