//! Fine-tuning over a frozen int8 backbone in the simulator: the generated statics are what
//! pre-training and quantising give, the fast backbone equals TFLite's reference kernels, the
//! head learns the classes the backbone never saw, the shift scenario recovers, and a full
//! queue drops and counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heapless::spsc::Queue;
use tinytrain::finetune::{Inlet, StreamCounters};
use tinytrain::int8::{Int8Chain, Int8Conv2d, Int8Layer, OutputScale};
use tinytrain::storage::TrainingStore;
use tinytrain::train::FitState;
use tinytrain_firmware_app::finetune::{FEATURES, Feeder, Head, HeadOpt, Pool, STREAM_IMAGES, Sample, Shift, Tuner};
use tinytrain_firmware_app::mnist::{PIXELS, PackedMnist};
use tinytrain_sim::datasets::workspace_data_dir;
use tinytrain_sim::finetune::{Prepared, QuantConv, Scenario, emit_rust, pack_sets, prepare, simulate_scenario};

#[test]
fn generated_statics_are_what_pretraining_and_quantising_give() {
    let data = workspace_data_dir();
    let reference = prepare(&data, Scenario::Reference).unwrap();
    let shift = prepare(&data, Scenario::Shift).unwrap();
    assert!(reference.float_accuracy > 0.95, "{}", reference.float_accuracy);
    let text = emit_rust(&[(Scenario::Reference, &reference), (Scenario::Shift, &shift)]);
    let committed = include_str!("../../firmware/app/src/finetune_weights.rs");
    assert!(
        text == committed,
        "firmware/app/src/finetune_weights.rs is not what pre-training gives: run \
         `cargo run --release -p tinytrain-sim -- finetune --emit-rust firmware/app/src/finetune_weights.rs`"
    );
    // The leaked backbone is the committed static, output for output.
    let sets = pack_sets(&data).unwrap();
    let test = PackedMnist::new(&sets.test).unwrap();
    let leaked = reference.leak().unwrap();
    let (statics, _) = Scenario::Reference.statics();
    let mut q = [0i8; PIXELS];
    for i in 0..50 {
        test.get_quantized(i, statics.input_lut, None, &mut q).unwrap();
        let (mut a, mut b) = ([0i8; FEATURES], [0i8; FEATURES]);
        leaked.features_quantized(&q, &mut a);
        statics.features_quantized(&q, &mut b);
        assert_eq!(a, b);
    }
    check_against_reference_kernels(&reference, &test);
}

/// The same convolution on the TFLite reference kernel wrapper.
fn reference_conv<const H: usize, const W: usize, const CI: usize, const CO: usize, const K: usize, const HO: usize>(
    c: &QuantConv,
) -> Int8Conv2d<'static, H, W, CI, CO, K, K, 2, 2, HO, HO> {
    let mut w = Box::new([[[[0i8; CI]; K]; K]; CO]);
    w.as_flattened_mut().as_flattened_mut().as_flattened_mut().copy_from_slice(&c.weight);
    Int8Conv2d {
        weight: Box::leak(w),
        bias: Some(Box::leak(Box::new(<[i32; CO]>::try_from(&c.bias[..]).unwrap()))),
        input_offset: c.input_offset,
        output_offset: c.output_offset,
        activation_min: c.activation.0,
        activation_max: c.activation.1,
        scale: OutputScale::PerChannel(Box::leak(Box::new(<[_; CO]>::try_from(&c.multipliers[..]).unwrap()))),
    }
}

fn check_against_reference_kernels(p: &Prepared, test: &PackedMnist<'_>) {
    let slow: Int8Chain<_, _, 864> = Int8Chain {
        first: Int8Chain::<_, _, 1014> {
            first: reference_conv::<28, 28, 1, 6, 4, 13>(&p.conv1),
            second: reference_conv::<13, 13, 6, 24, 3, 6>(&p.conv2),
        },
        second: Pool::default(),
    };
    let fast = p.leak().unwrap();
    let mut q = [0i8; PIXELS];
    for i in 0..200 {
        test.get_quantized(i, fast.input_lut, Some(&tinytrain_firmware_app::finetune::ROTATE_30), &mut q).unwrap();
        let (mut a, mut b) = ([0i8; FEATURES], [0i8; FEATURES]);
        slow.forward(&q, &mut a);
        fast.features_quantized(&q, &mut b);
        assert_eq!(a, b, "image {i}");
    }
}

#[test]
fn the_head_learns_the_classes_the_backbone_never_saw() {
    let run = simulate_scenario(&workspace_data_dir(), Scenario::Reference, None, &mut ()).unwrap();
    let f = &run.fine;
    assert_eq!((f.offered, f.dropped, f.consumed), (STREAM_IMAGES as u32, 0, STREAM_IMAGES as u32));
    assert_eq!(f.steps, 250);
    let (before, after) = run.test_all;
    println!("reference: all {} test images, {:.4} -> {:.4}", after.samples, before.accuracy, after.accuracy);
    assert!(before.accuracy < 0.55, "the pre-trained head knows classes 0-4 only: {}", before.accuracy);
    assert!(after.accuracy > 0.85, "{}", after.accuracy);
    // Every batch holds the 4 new samples, then 4 drawn from the 16 most recent.
    assert_eq!(run.batches.len(), 250);
    for (s, batch) in run.batches.iter().enumerate() {
        let newest = 4 * s as u32 + 3;
        assert_eq!(&batch[..4], &[newest - 3, newest - 2, newest - 1, newest]);
        assert!(batch[4..].iter().all(|&r| r <= newest && newest - r < 16), "{batch:?}");
    }
    // The last head checkpoint in the simulated flash is the head, and says the run is over.
    let mut flash = run.board.flash.clone();
    let store = TrainingStore::<Head, HeadOpt>::new(&flash, 0).unwrap();
    let backbone = Scenario::Reference.statics().0;
    let mut tuner = Box::new(Tuner::new(backbone));
    let mut state = FitState::new();
    let settings = Scenario::Reference.config().settings_hash();
    assert!(store.load(&mut flash, &mut tuner.trainer, &mut state, settings).unwrap().is_some());
    assert_eq!(tuner.trainer.model, *run.head);
    assert!(state.over && state.counted == 1000 && state.batch == 250);
}

#[test]
fn the_shift_scenario_recovers_the_rotated_images() {
    let run = simulate_scenario(&workspace_data_dir(), Scenario::Shift, None, &mut ()).unwrap();
    let (before, after) = run.test_all;
    println!("shift: all {} rotated test images, {:.4} -> {:.4}", after.samples, before.accuracy, after.accuracy);
    assert!(after.accuracy > before.accuracy + 0.15, "{} -> {}", before.accuracy, after.accuracy);
    assert_eq!(run.fine.dropped, 0);
}

#[test]
fn a_full_queue_drops_and_counts_and_never_blocks() {
    let sets = pack_sets(&workspace_data_dir()).unwrap();
    let (backbone, _) = Scenario::Reference.statics();
    let counters = StreamCounters::new();
    let mut queue: Box<Queue<Sample, 3>> = Box::new(Queue::new());
    let (producer, mut consumer) = queue.split();
    let mut inlet = Inlet::new(producer, &counters);
    let mut feeder = Feeder {
        data: PackedMnist::new(&sets.stream).unwrap(),
        next: 0,
        end: 10,
        shift: Shift::None,
        input_lut: backbone.input_lut,
    };
    // Ten interrupts with nobody consuming: two samples queued, eight dropped, then closed.
    for _ in 0..10 {
        assert!(feeder.tick(&mut inlet));
    }
    assert!(!feeder.tick(&mut inlet));
    assert_eq!((counters.offered(), counters.dropped(), counters.is_closed()), (10, 8, true));
    // The queued ones are the first two, in order.
    let stream = PackedMnist::new(&sets.stream).unwrap();
    for i in 0..2 {
        let s = consumer.dequeue().unwrap();
        let mut q = [0i8; PIXELS];
        assert_eq!(stream.get_quantized(i, backbone.input_lut, None, &mut q).unwrap(), s.label);
        assert_eq!(q, s.q);
    }
    assert!(consumer.dequeue().is_none());
}

/// The backbone's quantisation is the `quantize` module's (TFLite's full-integer scheme): the
/// same int8 filters, int32 biases and output scales and zero points for both convolutions.
#[test]
fn the_backbone_quantises_as_the_quantize_module_does() {
    use tinytrain_sim::tflite::{Data, OpKind};
    let data =
        tinytrain_sim::datasets::load(tinytrain_sim::datasets::DatasetKind::Mnist, &workspace_data_dir()).unwrap();
    let net = tinytrain_sim::finetune::pretrain(&data.train, 5).unwrap();
    let mut calibration = Vec::new();
    for i in 0..tinytrain_sim::finetune::PRETRAIN_IMAGES {
        if data.train.labels[i] < 5 && calibration.len() < tinytrain_sim::finetune::CALIBRATION_IMAGES * PIXELS {
            calibration.extend_from_slice(&data.train.pixels[i * PIXELS..(i + 1) * PIXELS]);
        }
    }
    let ours = tinytrain_sim::finetune::quantize_backbone(&net, &calibration).unwrap();
    let floats: Vec<Vec<f32>> = calibration
        .chunks_exact(PIXELS)
        .map(|img| img.iter().map(|&p| f32::from(p) * tinytrain_firmware_app::mnist::SCALE).collect())
        .collect();
    let theirs = tinytrain_sim::quantize::quantize(&*net, floats.iter().map(Vec::as_slice), "mnist-cnn-tiny").unwrap();
    let g = &theirs.graph;
    let convs: Vec<_> = g.ops.iter().filter(|o| matches!(o.kind, OpKind::Conv2d { .. })).collect();
    assert_eq!(convs.len(), 2);
    for (op, conv) in convs.iter().zip([&ours.conv1, &ours.conv2]) {
        let tensor = |i: usize| &g.tensors[op.inputs[i].unwrap()];
        assert_eq!(tensor(1).data, Some(Data::I8(conv.weight.clone())), "filters");
        assert_eq!(tensor(2).data, Some(Data::I32(conv.bias.clone())), "biases");
        let out = g.tensors[op.outputs[0]].quant.as_ref().unwrap();
        assert_eq!((out.scale[0], out.zero_point[0]), (conv.output_scale, i64::from(conv.output_offset)));
    }
}

/// A power cut in the middle of the stream: the next boot goes on from the last head
/// checkpoint (head, velocity, steps, replay draws, stream position) and finishes the stream;
/// a boot after that only evaluates the saved head.
#[test]
fn a_boot_after_a_power_cut_goes_on_from_the_last_head_checkpoint() {
    use tinytrain_sim::board::SIM_FLASH_BYTES;
    use tinytrain_sim::finetune::{SimBoot, simulate_boot};
    use tinytrain_sim::flash::SimFlash;
    let sets = pack_sets(&workspace_data_dir()).unwrap();
    let (backbone, head) = Scenario::Reference.statics();
    let cfg = Scenario::Reference.config();
    // Cut after 120 steps: the last checkpoint is the one of step 100 (every 50).
    let boot = simulate_boot(backbone, head, &sets, &cfg, SimFlash::new(SIM_FLASH_BYTES), Some(120), &mut ()).unwrap();
    let SimBoot::PowerCut { steps, flash } = boot else { panic!("no cut") };
    assert_eq!(steps, 120);
    let SimBoot::Finished(run) = simulate_boot(backbone, head, &sets, &cfg, flash, None, &mut ()).unwrap() else {
        panic!("cut again")
    };
    let f = &run.fine;
    assert!(f.resumed_from.is_some());
    assert_eq!((f.steps_before, f.consumed_before), (100, 400));
    assert_eq!((f.steps, f.consumed, f.dropped), (150, 600, 0));
    // The resumed boot trained on the stream from image 400 on, and drew replays among them.
    assert_eq!(run.batches[0][..4], [400, 401, 402, 403]);
    assert!(run.batches.iter().flatten().all(|&s| s >= 400));
    println!("resumed: all test images {:.4} -> {:.4}", run.test_all.0.accuracy, run.test_all.1.accuracy);
    assert!(run.test_all.1.accuracy > 0.85, "{}", run.test_all.1.accuracy);
    // A boot after the end: no training, the saved head.
    let head_after = run.head.clone();
    let SimBoot::Finished(again) = simulate_boot(backbone, head, &sets, &cfg, run.board.flash, None, &mut ()).unwrap()
    else {
        panic!("cut")
    };
    assert_eq!((again.fine.steps, again.fine.consumed, again.fine.offered), (0, 0, 0));
    assert_eq!(again.head, head_after);
}
