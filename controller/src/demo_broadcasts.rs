//! The demo county's timetable: three notices in the library and a week of
//! schedules, so a first look at the demo shows villages downloading,
//! playing and reporting. Added once, when the library is empty.
//!
//! Each notice is spoken by espeak-ng when it is installed, and otherwise
//! is a short chime of its own (the demo needs nothing installed). Both go
//! through the library's own pipeline, as an upload would.

use std::io::Write;

use anyhow::Context;
use dalaba_schedules::priority::Priority;
use dalaba_schedules::{HumanRule, Recurrence, Targets};
use sha2::{Digest, Sha256};

use crate::api::AppState;
use crate::directory::Level;
use crate::library::ItemSource;
use crate::library::pipeline::{self, Describe, Received};
use crate::library::tts;
use crate::schedules::{PlaylistEntry, ScheduleSpec};

/// A notice of the demo: category, title, spoken text, chime notes (Hz).
struct Notice {
    category: &'static str,
    title: &'static str,
    text: &'static str,
    notes: &'static [f64],
}

const NOTICES: [Notice; 3] = [
    Notice {
        category: "legal",
        title: "法治宣传：反电信网络诈骗",
        text: "各位村民请注意：不听、不信、不转账。陌生来电要求汇款，一律是诈骗。如有疑问，请拨打反诈专线九六一一零。",
        notes: &[523.25, 659.25, 783.99, 1046.5],
    },
    Notice {
        category: "traffic",
        title: "交通安全：农用车不载人",
        text: "交通安全提示：农用三轮车、拖拉机严禁载人，驾驶电动车请佩戴头盔，雨天路滑，减速慢行。",
        notes: &[783.99, 659.25, 523.25, 659.25],
    },
    Notice {
        category: "health",
        title: "卫生健康：秋冬季流感预防",
        text: "健康提示：秋冬季是流感高发季节，请勤洗手、常通风，出现发热咳嗽及时到村卫生室就诊。",
        notes: &[587.33, 739.99, 880.0, 739.99],
    },
];

/// Adds the demo's notices and schedules unless the library has items.
/// Returns whether it added anything.
pub async fn seed(st: &AppState) -> anyhow::Result<bool> {
    let existing = st.db(|s| Ok((s.library_items()?.len(), s.schedules()?.len()))).await?;
    if existing != (0, 0) {
        return Ok(false);
    }
    let mut items = Vec::new();
    for notice in &NOTICES {
        items.push(add_notice(st, notice).await.with_context(|| format!("demo notice {}", notice.title))?);
    }
    let regions = st.db(|s| s.regions()).await?;
    let townships: Vec<i64> = regions.iter().filter(|r| r.level == Level::Township).map(|r| r.id).collect();
    let times = |t: &[&str]| t.iter().filter_map(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M:%S").ok()).collect();
    let specs = [
        spec("早间法治宣传", items[0], Recurrence::Rule(HumanRule::Daily { times: times(&["07:30:00"]) }), county()),
        spec(
            "午间交通提示",
            items[1],
            Recurrence::Rule(HumanRule::Weekdays { times: times(&["12:00:00"]) }),
            Targets { townships: townships.iter().copied().take(7).collect(), ..Targets::default() },
        ),
        spec("傍晚健康知识", items[2], Recurrence::Rule(HumanRule::Daily { times: times(&["18:30:00"]) }), county()),
        // Something to hear within minutes of starting the demo.
        ScheduleSpec {
            priority: Priority::Background,
            volume: 60,
            ..spec("演示：每十分钟试播", items[2], Recurrence::Cron("0 */10 * * * *".into()), county())
        },
    ];
    let now = st.clock.now_ms();
    for s in specs {
        let stored = st.db(move |store| store.create_schedule(&s, now)).await?;
        tracing::info!(id = stored.id, name = %stored.spec.name, "demo schedule added");
    }
    st.distribution.poke();
    Ok(true)
}

fn county() -> Targets {
    Targets { county: true, ..Targets::default() }
}

fn spec(name: &str, item: i64, recurrence: Recurrence, targets: Targets) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        description: "演示节目".into(),
        playlist: vec![PlaylistEntry { item_id: item, repeats: 0 }],
        gap_ms: 0,
        recurrence,
        timezone: dalaba_schedules::DEFAULT_TIMEZONE.into(),
        valid_from: None,
        valid_until: None,
        max_delay_ms: crate::schedules::DEFAULT_MAX_DELAY_MS,
        targets,
        priority: Priority::Scheduled,
        volume: crate::schedules::DEFAULT_VOLUME,
        enabled: true,
    }
}

/// Speaks or chimes one notice and adds it to the library; returns its id.
async fn add_notice(st: &AppState, notice: &Notice) -> anyhow::Result<i64> {
    let file = st.library.content.temp_file().context("temporary file")?;
    let (source, description) = match tts::speak(&st.library.settings, notice.text, file.path()).await {
        Ok(()) => (ItemSource::Tts, notice.text.to_owned()),
        Err(e) => {
            tracing::info!(reason = %e, "demo notice as a chime (text to speech unavailable)");
            std::fs::File::create(file.path())
                .and_then(|mut f| f.write_all(&chime_wav(notice.notes)))
                .context("writing the chime")?;
            (ItemSource::Upload, format!("提示音（演示）。{}", notice.text))
        }
    };
    let bytes = std::fs::read(file.path()).context("reading the notice audio")?;
    let received = Received {
        sha256: hex::encode(Sha256::digest(&bytes)),
        size_bytes: bytes.len() as u64,
        file,
        hint: Some("wav".into()),
    };
    let describe = Describe {
        title: notice.title.into(),
        description,
        category: notice.category.into(),
        source,
        now_ms: st.clock.now_ms(),
    };
    let (store, library) = (st.store.clone(), st.library.clone());
    let item = tokio::task::spawn_blocking(move || {
        pipeline::add(store.as_ref(), &library.content, &library.settings, received, describe)
    })
    .await
    .context("library task")??;
    tracing::info!(id = item.id, title = %item.title, "demo notice added");
    Ok(item.id)
}

/// A mono 16-bit 16 kHz WAV: the notes as soft bell tones, twice.
fn chime_wav(notes: &[f64]) -> Vec<u8> {
    const RATE: u32 = 16_000;
    const NOTE_S: f64 = 0.45;
    let mut samples: Vec<i16> = Vec::new();
    for _ in 0..2 {
        for &f in notes {
            let n = (f64::from(RATE) * NOTE_S) as usize;
            samples.extend((0..n).map(|i| {
                let t = i as f64 / f64::from(RATE);
                let envelope = (-4.0 * t).exp() * (1.0 - (-200.0 * t).exp());
                let s = 0.4
                    * envelope
                    * ((std::f64::consts::TAU * f * t).sin() + 0.3 * (std::f64::consts::TAU * 2.0 * f * t).sin());
                (s * 32767.0) as i16
            }));
        }
        samples.extend(std::iter::repeat_n(0, RATE as usize / 2));
    }
    let data = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data as usize);
    for chunk in [
        &b"RIFF"[..],
        &(36 + data).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &RATE.to_le_bytes(),
        &(2 * RATE).to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data.to_le_bytes(),
    ] {
        wav.extend_from_slice(chunk);
    }
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chimes_are_valid_audio_of_a_few_seconds() {
        let wav = chime_wav(NOTICES[0].notes);
        let analysis = dalaba_audio::probe::analyse(std::io::Cursor::new(wav), Some("wav"), &Default::default())
            .expect("a chime decodes");
        assert!((3_000..6_000).contains(&analysis.duration_ms), "{} ms", analysis.duration_ms);
    }
}
