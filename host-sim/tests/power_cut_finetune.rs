//! Power cuts during a fine-tuning head checkpoint: the head's `TrainingStore` (the `Dense<216,
//! 10>` head, its SGD-momentum velocity and the stream loop's `FitState`) cut after every single
//! flash operation of a save keeps the previous checkpoint or gives the new one, whole; never
//! anything else. The same store code as every training checkpoint, on the head's type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tinytrain::prelude::*;
use tinytrain::storage::TrainingStore;
use tinytrain::train::FitState;
use tinytrain_firmware_app::finetune::{FineTuneConfig, Head, HeadOpt, Tuner};
use tinytrain_sim::finetune::Scenario;
use tinytrain_sim::flash::SimFlash;

type Flash = SimFlash<4, 4096>;

/// A head with distinct weights and velocity, and a loop state in the middle of the stream.
fn checkpoint(seed: u64) -> (Box<Tuner<'static>>, FitState) {
    let mut t = Box::new(Tuner::new(Scenario::Reference.statics().0));
    t.trainer.model.init(&mut Rng::new(seed));
    let mut rng = Rng::new(seed + 100);
    t.trainer.opt.visit_state_mut(&mut |p| p.iter_mut().for_each(|v| *v = rng.uniform(-0.1, 0.1)));
    t.trainer.opt.set_steps(seed as u32 * 50);
    let state = FitState {
        epoch: 3,
        batch: seed as u32 * 50,
        rng: Rng::new(seed).state(),
        counted: seed as u32 * 200,
        loss_sum: 12.5,
        ..FitState::new()
    };
    (t, state)
}

fn image(t: &Tuner<'_>, s: &FitState) -> Vec<u32> {
    let mut v = Vec::new();
    t.trainer.model.visit(&mut |_, p| v.extend(p.iter().map(|x| x.to_bits())));
    t.trainer.opt.visit_state(&mut |p| v.extend(p.iter().map(|x| x.to_bits())));
    v.push(t.trainer.opt.steps());
    v.extend(s.to_bytes().iter().map(|&b| u32::from(b)));
    v
}

fn load(store: TrainingStore<Head, HeadOpt>, flash: &mut Flash, settings: u32) -> Option<Vec<u32>> {
    let mut t = Box::new(Tuner::new(Scenario::Reference.statics().0));
    let mut s = FitState::new();
    store.load(flash, &mut t.trainer, &mut s, settings).unwrap().map(|_| image(&t, &s))
}

#[test]
fn power_cut_at_every_operation_of_a_head_checkpoint_keeps_the_previous_or_the_new() {
    let settings = FineTuneConfig::REFERENCE.settings_hash();
    let mut flash = Flash::new(64 * 1024);
    let store = TrainingStore::<Head, HeadOpt>::new(&flash, 0).unwrap();
    let (a, sa) = checkpoint(1);
    let (b, sb) = checkpoint(2);
    let (c, sc) = checkpoint(3);
    // Onto blank flash, then with one slot used, then overwriting the older of two.
    for (previous, new) in [(None, (&a, &sa)), (Some((&a, &sa)), (&b, &sb)), (Some((&b, &sb)), (&c, &sc))] {
        let mut probe = flash.clone();
        let before = probe.operations();
        store.save(&mut probe, &new.0.trainer, new.1, settings).unwrap();
        let total = probe.operations() - before;
        assert!(total > 200, "a head checkpoint is hundreds of flash operations ({total})");
        let (mut kept, mut advanced) = (0, 0);
        for k in 0..=total {
            let mut f = flash.clone();
            f.cut_power_after(k);
            assert_eq!(store.save(&mut f, &new.0.trainer, new.1, settings).is_ok(), k == total);
            f.power_on();
            match (load(store, &mut f, settings), previous) {
                (Some(img), _) if img == image(new.0, new.1) => advanced += 1,
                (Some(img), Some((p, ps))) => {
                    assert_eq!(img, image(p, ps), "cut after {k} of {total}: neither the previous nor the new head");
                    kept += 1;
                }
                (None, None) => kept += 1,
                (got, _) => panic!("cut after {k} of {total}: {}", if got.is_some() { "a stranger" } else { "lost" }),
            }
        }
        println!("head checkpoint: {} cuts, {kept} kept the previous, {advanced} gave the new one", total + 1);
        assert_eq!(kept + advanced, total + 1);
        assert!(kept >= 1 && advanced >= 1);
        store.save(&mut flash, &new.0.trainer, new.1, settings).unwrap();
    }
    // Another scenario's settings never load this checkpoint.
    assert_eq!(load(store, &mut flash, FineTuneConfig::SHIFT.settings_hash()), None);
}
