//! End-to-end behaviour of `Sampler` against the public API only.

use owl_sample::{splitmix64, top_logprobs, SampleError, Sampler, SamplingParams};

fn logits(seed: u64, len: usize) -> Vec<f32> {
    let mut st = seed;
    (0..len)
        .map(|_| (splitmix64(&mut st) >> 40) as f32 / (1u64 << 24) as f32 * 16.0 - 8.0)
        .collect()
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

fn sampler(p: SamplingParams) -> Sampler {
    Sampler::new(p).expect("valid params")
}

fn seeded(seed: u64) -> SamplingParams {
    SamplingParams {
        seed: Some(seed),
        ..SamplingParams::default()
    }
}

fn draws(s: &mut Sampler, l: &[f32], n: usize) -> Vec<u32> {
    (0..n).map(|_| s.sample(l, &[])).collect()
}

#[test]
fn greedy_is_argmax_with_lowest_id_ties() {
    let mut s = sampler(SamplingParams::greedy());
    for seed in 0..50 {
        let l = logits(seed, 1000);
        assert_eq!(s.sample(&l, &[1, 2, 3]), argmax(&l));
    }
    assert_eq!(s.sample(&[0.0, 5.0, 1.0, 5.0], &[]), 1);
    // Penalties/bias off by default: history must not matter.
    assert_eq!(s.sample(&[0.0, 5.0, 1.0, 5.0], &[1, 1, 1]), 1);
}

#[test]
fn same_seed_reproduces_different_seeds_differ() {
    let l = logits(3, 500);
    let p = |seed| SamplingParams {
        temperature: 1.5,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..seeded(seed)
    };
    let a = draws(&mut sampler(p(42)), &l, 100);
    let b = draws(&mut sampler(p(42)), &l, 100);
    let c = draws(&mut sampler(p(43)), &l, 100);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Default chain too, and the stream is not constant.
    let d = draws(&mut sampler(seeded(7)), &l, 100);
    assert_eq!(d, draws(&mut sampler(seeded(7)), &l, 100));
    assert!(d.iter().any(|&t| t != d[0]));
}

#[test]
fn golden_sequence_is_frozen() {
    // Guards cross-version reproducibility: changing the PRNG, the draw or
    // the chain order changes these tokens. (Cross-checked against an
    // independent Python implementation of xoshiro256** + the draw.)
    let l: Vec<f32> = (0..8).map(|i| (i as f32 * 0.37).sin()).collect();
    let p = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..seeded(1234)
    };
    let got = draws(&mut sampler(p), &l, 16);
    assert_eq!(got, GOLDEN);
}

const GOLDEN: [u32; 16] = [0, 6, 5, 6, 1, 6, 4, 2, 4, 5, 4, 2, 1, 5, 3, 6];

#[test]
fn unseeded_samplers_differ() {
    let l = vec![0.0f32; 1000];
    let p = SamplingParams {
        seed: None,
        top_k: 0,
        ..SamplingParams::default()
    };
    let a = draws(&mut sampler(p.clone()), &l, 50);
    let b = draws(&mut sampler(p), &l, 50);
    assert_ne!(a, b);
}

#[test]
fn top_k_one_and_tiny_top_p_are_greedy() {
    for seed in 0..30 {
        let mut l = logits(seed, 2000);
        if seed % 3 == 0 {
            // A tie at the top must also resolve to the lowest id.
            let m = l[argmax(&l) as usize];
            l[1999] = m;
            l[0] = m;
        }
        let want = argmax(&l);
        let k1 = SamplingParams {
            top_k: 1,
            temperature: 1.3,
            ..seeded(seed)
        };
        let p0 = SamplingParams {
            top_k: 0,
            top_p: 1e-6,
            min_p: 0.0,
            temperature: 1.3,
            ..seeded(seed)
        };
        let (mut a, mut b) = (sampler(k1), sampler(p0));
        for _ in 0..5 {
            assert_eq!(a.sample(&l, &[]), want);
            assert_eq!(b.sample(&l, &[]), want);
        }
    }
}

#[test]
fn min_p_keeps_exactly_tokens_above_fraction_of_max() {
    // probs proportional to 10, 6, 3, 1.9, 1, 0.5 -> relative to max: 1, .6, .3, .19, .1, .05
    let w = [10.0f32, 6.0, 3.0, 1.9, 1.0, 0.5];
    let l: Vec<f32> = w.iter().map(|x| x.ln()).collect();
    let p = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.2,
        ..seeded(5)
    };
    let mut s = sampler(p);
    let mut seen = [0usize; 6];
    for _ in 0..5000 {
        seen[s.sample(&l, &[]) as usize] += 1;
    }
    assert!(seen[..3].iter().all(|&c| c > 0), "{seen:?}");
    assert_eq!(&seen[3..], &[0, 0, 0], "{seen:?}");
    // Kept mass renormalised: 10/19 for the top token.
    let f = seen[0] as f64 / 5000.0;
    assert!((f - 10.0 / 19.0).abs() < 0.03, "{f}");
}

#[test]
fn repeat_penalty_through_sampler() {
    let mut s = sampler(SamplingParams {
        repeat_penalty: 2.0,
        ..SamplingParams::greedy()
    });
    // 3.0 / 2 = 1.5 < 2.0 -> token 1 wins once token 0 was seen.
    assert_eq!(s.sample(&[3.0, 2.0, -1.0], &[]), 0);
    assert_eq!(s.sample(&[3.0, 2.0, -1.0], &[0]), 1);
    // Negative logits are multiplied: -1 * 2 = -2 < -1.5.
    assert_eq!(s.sample(&[-1.5, -1.0], &[1]), 0);
    // Outside the last_n window the penalty does not apply.
    let mut w = sampler(SamplingParams {
        repeat_penalty: 2.0,
        repeat_last_n: 2,
        ..SamplingParams::greedy()
    });
    assert_eq!(w.sample(&[3.0, 2.0, -1.0], &[0, 2, 2]), 0);
    assert_eq!(w.sample(&[3.0, 2.0, -1.0], &[2, 0, 2]), 1);
}

#[test]
fn frequency_and_presence_penalties_through_sampler() {
    let mut f = sampler(SamplingParams {
        frequency_penalty: 0.4,
        ..SamplingParams::greedy()
    });
    // token 0 seen twice: 3.0 - 0.8 = 2.2 > 2.1; three times: 1.8 < 2.1.
    assert_eq!(f.sample(&[3.0, 2.1], &[0, 0]), 0);
    assert_eq!(f.sample(&[3.0, 2.1], &[0, 0, 0]), 1);
    let mut p = sampler(SamplingParams {
        presence_penalty: 0.5,
        ..SamplingParams::greedy()
    });
    // presence does not scale with count: 3.0 - 0.5 = 2.5 > 2.1 however often.
    assert_eq!(p.sample(&[3.0, 2.1], &[0, 0, 0, 0]), 0);
    assert_eq!(p.sample(&[3.0, 2.6], &[0]), 1);
}

#[test]
fn logit_bias_neg_inf_bans_token() {
    let l = [5.0f32, 4.9, 0.0, -3.0];
    let ban = vec![(0u32, f32::NEG_INFINITY)];
    let mut g = sampler(SamplingParams {
        logit_bias: ban.clone(),
        ..SamplingParams::greedy()
    });
    assert_eq!(g.sample(&l, &[]), 1);
    let mut s = sampler(SamplingParams {
        logit_bias: ban,
        temperature: 5.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..seeded(9)
    });
    let d = draws(&mut s, &l, 2000);
    assert!(d.iter().all(|&t| t != 0));
    assert!(d.contains(&3));
    // A positive bias can promote a token.
    let mut up = sampler(SamplingParams {
        logit_bias: vec![(3, 10.0)],
        ..SamplingParams::greedy()
    });
    assert_eq!(up.sample(&l, &[]), 3);
}

#[test]
fn empirical_frequencies_match_softmax() {
    let l = [1.0f32, 0.0, -0.5, 2.0];
    let m = 2.0f64;
    let z: f64 = l.iter().map(|&x| (x as f64 - m).exp()).sum();
    let want: Vec<f64> = l.iter().map(|&x| (x as f64 - m).exp() / z).collect();
    let p = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..seeded(2024)
    };
    let mut s = sampler(p);
    let n = 20_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[s.sample(&l, &[]) as usize] += 1;
    }
    for i in 0..4 {
        let f = counts[i] as f64 / n as f64;
        assert!((f - want[i]).abs() < 0.02, "token {i}: {f} vs {}", want[i]);
    }
}

#[test]
fn temperature_sharpens_and_flattens() {
    let l = [1.0f32, 0.0];
    let count0 = |t: f32| {
        let mut s = sampler(SamplingParams {
            temperature: t,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..seeded(11)
        });
        draws(&mut s, &l, 4000).iter().filter(|&&x| x == 0).count()
    };
    let (cold, warm, hot) = (count0(0.25), count0(1.0), count0(4.0));
    assert!(cold > warm && warm > hot, "{cold} {warm} {hot}");
    // t = 0.25: p0 = 1 / (1 + e^-4) ~ 0.982
    assert!((cold as f64 / 4000.0 - 0.982).abs() < 0.02);
}

#[test]
fn validate_is_enforced_by_new() {
    let bad = SamplingParams {
        min_p: 2.0,
        ..SamplingParams::default()
    };
    match Sampler::new(bad) {
        Err(SampleError::InvalidParam { field, reason }) => {
            assert_eq!(field, "min_p");
            assert!(reason.contains('2'));
        }
        other => panic!("expected InvalidParam, got {other:?}"),
    }
}

#[test]
fn top_logprobs_consistent_with_softmax() {
    let l = logits(77, 300);
    let (lp, top) = top_logprobs(&l, argmax(&l), 10);
    assert_eq!(top[0].0, argmax(&l));
    assert_eq!(top[0].1, lp);
    let mass: f64 = top.iter().map(|&(_, x)| (x as f64).exp()).sum();
    assert!(mass <= 1.0 + 1e-6);
    assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
}
