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
