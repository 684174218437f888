//! Power-safe checkpoints: a power cut at every single flash operation of a checkpoint write
//! leaves the loader returning the previous or the new checkpoint, intact, never anything else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tinytrain::prelude::*;
use tinytrain::storage::CheckpointStore;
use tinytrain::zoo::DigitsMlp;
use tinytrain_sim::flash::SimFlash;

type Flash = SimFlash<4, 4096>;

fn model(seed: u64) -> DigitsMlp {
    let mut m = DigitsMlp::ZERO;
    m.init(&mut Rng::new(seed));
    m
}

fn bits(m: &DigitsMlp) -> Vec<u32> {
    let mut v = Vec::new();
    m.visit(&mut |_, p| v.extend(p.iter().map(|x| x.to_bits())));
    v
}

/// Cuts power after every possible number of operations of one `save(new)` on `flash`, and
/// checks what a reboot loads. Returns (cuts that kept the previous, cuts that gave the new).
fn cut_everywhere(
    flash: &Flash,
    store: CheckpointStore<DigitsMlp>,
    previous: Option<&DigitsMlp>,
    new: &DigitsMlp,
) -> (usize, usize) {
    let mut probe = flash.clone();
    let before = probe.operations();
    store.save(&mut probe, new).unwrap();
    let total = probe.operations() - before;
    assert!(total > 2, "a save is several operations");
    let (mut kept, mut advanced) = (0, 0);
    for k in 0..=total {
        let mut f = flash.clone();
        f.cut_power_after(k);
        let result = store.save(&mut f, new);
        assert_eq!(result.is_ok(), k == total, "cut after {k} of {total}");
        f.power_on();
        let mut loaded = model(999);
        let untouched = bits(&loaded);
        match store.load(&mut f, &mut loaded).unwrap() {
            Some(_) if bits(&loaded) == bits(new) => advanced += 1,
            Some(_) if previous.is_some_and(|p| bits(&loaded) == bits(p)) => kept += 1,
            Some(seq) => panic!("cut after {k}: loaded checkpoint {seq} is neither the previous nor the new one"),
            None => {
                assert!(previous.is_none(), "cut after {k}: the previous checkpoint was lost");
                assert_eq!(bits(&loaded), untouched, "nothing loaded must mean nothing written");
                kept += 1;
            }
        }
    }
    assert_eq!(kept + advanced, total + 1);
    assert!(advanced >= 1 && kept >= 1);
    (kept, advanced)
}

#[test]
fn power_cut_at_every_step_keeps_previous_or_new_checkpoint() {
    let mut flash = Flash::new(64 * 1024);
    let store = CheckpointStore::<DigitsMlp>::new(&flash, 0).unwrap();
    let (a, b, c) = (model(1), model(2), model(3));

    // First save ever, onto blank flash.
    let (kept, advanced) = cut_everywhere(&flash, store, None, &a);
    println!("blank flash: {} cuts, {kept} left no checkpoint, {advanced} gave the new one", kept + advanced);
    store.save(&mut flash, &a).unwrap();

    // Second save: the other slot is blank.
    let (kept, advanced) = cut_everywhere(&flash, store, Some(&a), &b);
    println!("one slot used: {} cuts, {kept} kept the previous, {advanced} gave the new one", kept + advanced);
    store.save(&mut flash, &b).unwrap();

    // Third save: overwrites the slot holding the oldest checkpoint (a), b must survive.
    let (kept, advanced) = cut_everywhere(&flash, store, Some(&b), &c);
    println!("both slots used: {} cuts, {kept} kept the previous, {advanced} gave the new one", kept + advanced);
}

#[test]
fn slots_alternate_and_wear_evenly() {
    let mut flash = Flash::new(64 * 1024);
    let store = CheckpointStore::<DigitsMlp>::new(&flash, 0).unwrap();
    let mut last_seq = 0;
    for i in 0..20 {
        let (slot, seq) = store.save(&mut flash, &model(i)).unwrap();
        assert_eq!(slot, (i % 2) as usize);
        assert_eq!(seq, last_seq + 1);
        last_seq = seq;
    }
    let sectors = store.slot_size() / 4096;
    let counts = flash.erase_counts();
    println!("erase counts per sector: {:?}", &counts[..2 * sectors]);
    assert!(counts[..2 * sectors].iter().all(|&c| c == 10), "each slot erased once per two saves");
    let mut loaded = DigitsMlp::ZERO;
    assert_eq!(store.load(&mut flash, &mut loaded).unwrap(), Some(20));
    assert_eq!(bits(&loaded), bits(&model(19)));
}

#[test]
fn corrupted_newest_slot_falls_back_to_the_previous_one() {
    let mut flash = Flash::new(64 * 1024);
    let store = CheckpointStore::<DigitsMlp>::new(&flash, 0).unwrap();
    let (a, b) = (model(1), model(2));
    store.save(&mut flash, &a).unwrap();
    store.save(&mut flash, &b).unwrap();
    let slot1 = store.slot_offset(1) as usize;
    let data = tinytrain::storage::DATA_OFFSET;
    let end = data + tinytrain::checkpoint::file_len::<DigitsMlp>();
    // Every bit of the 16 header bytes, and every 97th bit of the weights file (the header
    // block's erased padding carries nothing).
    let positions = (0..16 * 8).chain((data * 8..end * 8).step_by(97));
    for bit in positions {
        let mut f = flash.clone();
        f.flip_bit(slot1 + bit / 8, (bit % 8) as u8);
        let mut loaded = DigitsMlp::ZERO;
        let seq = store.load(&mut f, &mut loaded).unwrap();
        assert_eq!(seq, Some(1), "bit {bit}: the corrupted newest slot must be skipped");
        assert_eq!(bits(&loaded), bits(&a));
    }
}

#[test]
fn checkpoint_of_another_network_is_not_loaded() {
    type Other = tinytrain::sequential![Dense<64, 32>, Tanh<32>, Dense<32, 10>];
    let mut flash = Flash::new(64 * 1024);
    let store = CheckpointStore::<DigitsMlp>::new(&flash, 0).unwrap();
    store.save(&mut flash, &model(1)).unwrap();
    let mut other = Other::ZERO;
    let store_other = CheckpointStore::<Other>::new(&flash, 0).unwrap();
    assert_eq!(store_other.load(&mut flash, &mut other).unwrap(), None);
    assert!(matches!(CheckpointStore::<DigitsMlp>::new(&Flash::new(16 * 1024), 0), Err(Error::StorageTooSmall { .. })));
}

mod training_store {
    use super::Flash;
    use tinytrain::prelude::*;
    use tinytrain::storage::TrainingStore;
    use tinytrain::train::FitState;

    type Small = tinytrain::sequential![Dense<4, 3>, Tanh<3>, Dense<3, 2>];
    type Run = Trainer<Small, Adam<{ <Small as Layer>::NUM_PARAMS }>>;

    /// A trainer with distinct weights and optimizer state, and a state in the middle of a run.
    fn run(seed: u64) -> (Box<Run>, FitState) {
        let mut t = Box::new(Run::ZERO);
        t.model.init(&mut Rng::new(seed));
        let mut rng = Rng::new(seed + 100);
        t.opt.visit_state_mut(&mut |p| p.iter_mut().for_each(|v| *v = rng.next_f32()));
        t.opt.set_steps(seed as u32 * 7);
        let state =
            FitState { epoch: 2, batch: seed as u32, rng: [1, 2, 3, seed as u32], loss_sum: 0.25, ..FitState::new() };
        (t, state)
    }

    fn image(t: &Run, s: &FitState) -> Vec<u32> {
        let mut v = Vec::new();
        t.model.visit(&mut |_, p| v.extend(p.iter().map(|x| x.to_bits())));
        t.opt.visit_state(&mut |p| v.extend(p.iter().map(|x| x.to_bits())));
        v.push(t.opt.steps());
        v.extend(s.to_bytes().iter().map(|&b| u32::from(b)));
        v
    }

    fn load(
        store: TrainingStore<Small, Adam<{ <Small as Layer>::NUM_PARAMS }>>,
        f: &mut Flash,
        settings: u32,
    ) -> Option<Vec<u32>> {
        let mut t = Box::new(Run::ZERO);
        let mut s = FitState::new();
        store.load(f, &mut t, &mut s, settings).unwrap().map(|_| image(&t, &s))
    }

    #[test]
    fn power_cut_at_every_operation_of_a_training_checkpoint_keeps_the_previous_or_the_new() {
        let mut flash = Flash::new(64 * 1024);
        let store = TrainingStore::new(&flash, 8192).unwrap();
        let (a, sa) = run(1);
        let (b, sb) = run(2);
        store.save(&mut flash, &a, &sa, 9).unwrap();
        let mut probe = flash.clone();
        let before = probe.operations();
        store.save(&mut probe, &b, &sb, 9).unwrap();
        let total = probe.operations() - before;
        let (mut kept, mut advanced) = (0, 0);
        for k in 0..=total {
            let mut f = flash.clone();
            f.cut_power_after(k);
            assert_eq!(store.save(&mut f, &b, &sb, 9).is_ok(), k == total);
            f.power_on();
            let loaded = load(store, &mut f, 9).expect("a checkpoint survives every cut");
            if loaded == image(&b, &sb) {
                advanced += 1;
            } else {
                assert_eq!(
                    loaded,
                    image(&a, &sa),
                    "cut after {k} of {total}: neither the previous nor the new checkpoint"
                );
                kept += 1;
            }
        }
        println!("training checkpoint: {} cuts, {kept} kept the previous, {advanced} gave the new one", total + 1);
        assert!(kept >= 1 && advanced >= 1);
    }

    #[test]
    fn checkpoint_of_other_settings_or_corrupt_is_not_resumed_and_nothing_is_touched() {
        let mut flash = Flash::new(64 * 1024);
        let store = TrainingStore::new(&flash, 0).unwrap();
        let (a, sa) = run(1);
        let (b, sb) = run(2);
        store.save(&mut flash, &a, &sa, 9).unwrap();
        store.save(&mut flash, &b, &sb, 9).unwrap();
        assert_eq!(load(store, &mut flash, 10), None, "other settings");
        // Any flipped bit of the newest slot's header or payload: the previous one is resumed.
        let newest = store.slot_offset(1) as usize;
        let len = tinytrain::storage::DATA_OFFSET
            + TrainingStore::<Small, Adam<{ <Small as Layer>::NUM_PARAMS }>>::PAYLOAD_LEN;
        for bit in (0..16 * 8).chain((tinytrain::storage::DATA_OFFSET * 8..len * 8).step_by(13)) {
            let mut f = flash.clone();
            f.flip_bit(newest + bit / 8, (bit % 8) as u8);
            assert_eq!(load(store, &mut f, 9), Some(image(&a, &sa)), "bit {bit}");
        }
        // A weights store over the same region sees no checkpoint of its own.
        let weights = tinytrain::storage::CheckpointStore::<Small>::new(&flash, 0).unwrap();
        assert_eq!(weights.scan(&mut flash).unwrap().newest(), None);
    }
}
