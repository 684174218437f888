//! Resumable training on the device: power is cut at random points of on-device training (between
//! optimizer steps, or in the middle of a flash operation of a training checkpoint or of the
//! weights file), the board reboots and resumes from its power-safe training store, and the run
//! ends with the weights of a run that was never cut, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tinytrain::Rng;
use tinytrain::checkpoint::file_len;
use tinytrain::storage::CheckpointStore;
use tinytrain_firmware_app::resumable::settings_hash;
use tinytrain_firmware_app::{Boot, Net, Resumed, RunConfig};
use tinytrain_sim::board::{PackedSets, SIM_FLASH_BYTES, SimFlash, boot_resumable, pack_digits, run_app};

type Flash = SimFlash<4, 4096>;

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"))
}

/// The weights file the app left in the flash's weights store.
fn weights_file(flash: &Flash, cfg: &RunConfig) -> Vec<u8> {
    let store = CheckpointStore::<Net>::new(flash, cfg.storage_offset).unwrap();
    let (slot, _) = store.scan(&mut flash.clone()).unwrap().newest().expect("a weights file");
    let at = store.slot_offset(slot) as usize + tinytrain::storage::DATA_OFFSET;
    flash.bytes()[at..at + file_len::<Net>()].to_vec()
}

fn finish(sets: &PackedSets, flash: Flash, cfg: &RunConfig) -> (Resumed, Flash) {
    match boot_resumable(sets, flash, cfg, None, &mut ()).unwrap() {
        (Ok(Boot::Finished(r)), flash) => (r, flash),
        (other, _) => panic!("an uncut boot must finish: {other:?}"),
    }
}

#[test]
fn uncut_resumable_run_gives_the_weights_of_the_plain_run() {
    let cfg = RunConfig::STANDARD;
    let sets = pack_digits(data_dir()).unwrap();
    let plain = run_app(data_dir(), &cfg, &mut ()).unwrap();
    let (r, flash) = finish(&sets, Flash::new(SIM_FLASH_BYTES), &cfg);
    assert_eq!(r.resumed_from, None);
    assert_eq!(r.params_crc, plain.outcome.params_crc, "checkpointing must not change a bit");
    assert_eq!(weights_file(&flash, &cfg), plain.weights);
    assert_eq!(r.test, plain.outcome.test);
    let losses: Vec<u32> = r.epochs().iter().map(tinytrain_firmware_app::EpochRecord::loss_bits).collect();
    let plain_losses: Vec<u32> =
        plain.outcome.epochs().iter().map(tinytrain_firmware_app::EpochRecord::loss_bits).collect();
    assert_eq!(losses, plain_losses);
    println!(
        "digits MLP: {} steps, {} training checkpoints of {} bytes ({} bytes of flash for two slots), params CRC {:#010x}",
        r.steps, r.checkpoints, r.checkpoint_bytes, r.checkpoint_flash, r.params_crc
    );
    // A boot after the end does not train again: it evaluates and rewrites the same weights.
    let (again, flash) = finish(&sets, flash, &cfg);
    assert_eq!((again.steps, again.epochs_run), (0, 0));
    assert_eq!(again.params_crc, plain.outcome.params_crc);
    assert_eq!(weights_file(&flash, &cfg), plain.weights);
}

#[test]
fn two_hundred_random_power_cuts_end_with_the_uncut_weights() {
    let cfg = RunConfig::STANDARD;
    let sets = pack_digits(data_dir()).unwrap();
    let (reference, ref_flash) = finish(&sets, Flash::new(SIM_FLASH_BYTES), &cfg);
    let reference_file = weights_file(&ref_flash, &cfg);
    let total_steps = reference.steps;
    let total_ops = ref_flash.operations();
    let mut rng = Rng::new(20_261_203);
    let (mut cuts, mut step_cuts, mut flash_cuts, mut runs, mut boots) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut max_boots = 0u32;
    while cuts < 200 {
        runs += 1;
        let mut flash = Flash::new(SIM_FLASH_BYTES);
        let mut run_boots = 0u32;
        // One to three cuts in this run, then a boot that is left alone.
        let planned = 1 + rng.below(3);
        let mut cut_here = 0;
        let result = loop {
            run_boots += 1;
            let cut_steps = if cut_here < planned && rng.below(2) == 0 { Some(rng.below(total_steps)) } else { None };
            if cut_here < planned && cut_steps.is_none() {
                flash.cut_power_after(rng.below(total_ops as u32) as usize + 1);
            }
            let (boot, mut left) = boot_resumable(&sets, flash, &cfg, cut_steps, &mut ()).unwrap();
            left.power_on();
            flash = left;
            match boot {
                Ok(Boot::Finished(r)) => break r,
                Ok(Boot::PowerCut { .. }) => {
                    step_cuts += 1;
                    cut_here += 1;
                }
                Err(e) => {
                    assert!(format!("{e}").contains("flash"), "only a power cut may stop a boot: {e}");
                    flash_cuts += 1;
                    cut_here += 1;
                }
            }
            assert!(run_boots < 20, "run {runs} does not finish");
        };
        cuts += cut_here;
        boots += run_boots;
        max_boots = max_boots.max(run_boots);
        assert_eq!(result.params_crc, reference.params_crc, "run {runs}: weights differ after {cut_here} cuts");
        assert_eq!(weights_file(&flash, &cfg), reference_file, "run {runs}: the weights file differs");
        // The training store of another configuration is not resumed.
        let other = RunConfig { seed: cfg.seed + 1, ..cfg };
        assert_ne!(settings_hash(&other), settings_hash(&cfg));
    }
    println!(
        "{cuts} power cuts ({step_cuts} between optimizer steps, {flash_cuts} during a flash operation) over {runs} runs \
         and {boots} boots (at most {max_boots} in one run): every run ended with params CRC {:#010x}",
        reference.params_crc
    );
    assert!(step_cuts > 20 && flash_cuts > 20, "both kinds of cut must be exercised");
}
