//! Library throughput: decode + loudness + Opus transcode of an upload, in
//! multiples of real time on one core, side by side with ffmpeg doing the
//! same transcode in the same run:
//! `ffmpeg -threads 1 -i in.mp3 -ac 1 -ar 48000 -c:a libopus -b:a 32k out.ogg`.
//!
//! Inputs are made here: 2+ minutes of speech (espeak-ng) and a minute of
//! music-like synthesis (sox), each encoded to a 44.1 kHz stereo 128 kb/s
//! MP3 with ffmpeg. Needs `ffmpeg`, `espeak-ng` and `sox` (Debian packages);
//! an input whose tool is missing is skipped with a note.
//!
//! Run: `cargo bench -p dalaba-audio --bench library`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dalaba_audio::opus::{OpusSettings, transcode_to_ogg_opus};
use dalaba_audio::probe::{Settings, analyse};

/// Runs of each contender per input; the fastest counts (the machine is shared).
const RUNS: usize = 3;

fn main() {
    if !installed("ffmpeg") {
        println!("library bench: ffmpeg is not installed (apt-get install ffmpeg); nothing to compare against");
        return;
    }
    let dir = std::env::temp_dir().join(format!("dalaba-audio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    let inputs = [("speech", make_speech(&dir)), ("music", make_music(&dir))];
    println!("library bench: decode + loudness + Opus (mono 48 kHz 32 kb/s) on one core, best of {RUNS}");
    for (name, mp3) in inputs {
        match mp3 {
            Some(mp3) => compare(name, &mp3, &dir),
            None => println!("{name}: skipped (espeak-ng or sox missing)"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn compare(name: &str, mp3: &Path, dir: &Path) {
    let analysis = analyse(open(mp3), Some("mp3"), &Settings::default()).expect("the bench input decodes");
    let seconds = analysis.frames as f64 / f64::from(analysis.sample_rate);
    let ours_at = |complexity: u8| OpusSettings { complexity, ..OpusSettings::default() };
    let (mut ours, mut ours_c10, mut theirs, mut analyse_only) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    let mut sizes = (0, 0);
    for _ in 0..RUNS {
        // Interleaved, so both see the same machine load.
        let (time, bytes) = run_ours(mp3, &ours_at(9));
        ours = ours.min(time);
        sizes.0 = bytes;
        let (time, bytes) = run_ffmpeg(mp3, &dir.join("ffmpeg.ogg"));
        theirs = theirs.min(time);
        sizes.1 = bytes;
        ours_c10 = ours_c10.min(run_ours(mp3, &ours_at(10)).0);
        let start = Instant::now();
        analyse(open(mp3), Some("mp3"), &Settings::default()).expect("analyse");
        analyse_only = analyse_only.min(start.elapsed());
    }
    let speed = |d: Duration| seconds / d.as_secs_f64();
    let kbps = |bytes: u64| bytes as f64 * 8.0 / seconds / 1000.0;
    println!(
        "{name}: {seconds:.1} s of {} Hz {}-channel MP3, {:.1} LUFS",
        analysis.sample_rate, analysis.channels, analysis.integrated_lufs
    );
    println!(
        "  ours (complexity 9):     {:7.1}× real time  ({:.2} s, {:.1} kb/s)",
        speed(ours),
        ours.as_secs_f64(),
        kbps(sizes.0)
    );
    println!("  ours (complexity 10):    {:7.1}× real time  ({:.2} s)", speed(ours_c10), ours_c10.as_secs_f64());
    println!(
        "  ffmpeg libopus (c. 10):  {:7.1}× real time  ({:.2} s, {:.1} kb/s)",
        speed(theirs),
        theirs.as_secs_f64(),
        kbps(sizes.1)
    );
    println!(
        "  ratio ours/ffmpeg:       {:7.2} (complexity 9), {:.2} (complexity 10)",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        theirs.as_secs_f64() / ours_c10.as_secs_f64()
    );
    println!("  ours, analyse only:      {:7.1}× real time", speed(analyse_only));
}

/// Our transcode from the file to memory; (time, output bytes).
fn run_ours(mp3: &Path, opus: &OpusSettings) -> (Duration, u64) {
    let mut out = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    transcode_to_ogg_opus(open(mp3), Some("mp3"), &Settings::default(), opus, &mut out).expect("transcode");
    (start.elapsed(), out.len() as u64)
}

/// ffmpeg's transcode, single-threaded; (time, output bytes).
fn run_ffmpeg(mp3: &Path, out: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-filter_threads", "1", "-threads", "1", "-i"])
        .arg(mp3)
        .args(["-threads", "1", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k"])
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    let elapsed = start.elapsed();
    assert!(status.success(), "ffmpeg failed");
    (elapsed, std::fs::metadata(out).map_or(0, |m| m.len()))
}

/// Two minutes and more of synthetic speech, as MP3.
fn make_speech(dir: &Path) -> Option<PathBuf> {
    if !installed("espeak-ng") {
        return None;
    }
    let text = "County notice. The township clinic opens at eight on Tuesday and Friday. \
                Keep the village roads clear for the harvest trucks, and keep children away from the reservoir. \
                Tomorrow the water supply stops from nine to eleven in the morning for repairs. ";
    let wav = dir.join("speech.wav");
    let ok = Command::new("espeak-ng").arg("-w").arg(&wav).arg(text.repeat(12)).status().ok()?.success();
    ok.then(|| to_mp3(&wav, &dir.join("speech.mp3")))?
}

/// A minute of plucked chords, as MP3.
fn make_music(dir: &Path) -> Option<PathBuf> {
    if !installed("sox") {
        return None;
    }
    let wav = dir.join("music.wav");
    let ok = Command::new("sox")
        .args(["-n", "-r", "44100", "-c", "2", "-b", "16"])
        .arg(&wav)
        // A plucked C major chord every 2 s, thirty times, with tremolo.
        .args(["synth", "2", "pluck", "C3", "pluck", "E3", "pluck", "G3", "pluck", "C4", "remix", "1,3", "2,4"])
        .args(["repeat", "29", "tremolo", "5", "20", "vol", "0.5"])
        .status()
        .ok()?
        .success();
    ok.then(|| to_mp3(&wav, &dir.join("music.mp3")))?
}

fn to_mp3(wav: &Path, mp3: &Path) -> Option<PathBuf> {
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args(["-ar", "44100", "-ac", "2", "-b:a", "128k"])
        .arg(mp3)
        .status()
        .ok()?;
    status.success().then(|| mp3.to_path_buf())
}

fn open(path: &Path) -> File {
    File::open(path).expect("bench input")
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("-version").output().or_else(|_| Command::new(tool).arg("--version").output()).is_ok()
}
