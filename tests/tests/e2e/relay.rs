//! The agent's relay drivers against emulated boards on pseudo-terminals:
//! the exact bytes on the wire, confirmation, and every way a board fails.

use std::path::Path;
use std::time::{Duration, Instant};

use dalaba_agent::config::{Config, DEFAULT_CONFIG, ModbusConfig, SerialConfig};
use dalaba_agent::core::AmplifierCommand::{Off, On};
use dalaba_agent::devices::{self, Amplifier};
use dalaba_agent::relay::modbus::ModbusRelay;
use dalaba_e2e::relay::{Behaviour, RelayEmulator, SerialBoard};
use dalaba_protocol::link::AmplifierState;

fn serial(path: &Path, attempts: u32) -> SerialConfig {
    SerialConfig { port: path.to_path_buf(), timeout_ms: 200, attempts, ..SerialConfig::default() }
}

fn modbus(board: &RelayEmulator, slave: u8, coil: u16) -> ModbusRelay {
    ModbusRelay::new(&serial(board.path(), 1), &ModbusConfig { slave, coil })
}

/// The agent's own configuration path: the default file with the
/// `[amplifier]` driver and serial port replaced.
fn configured(driver: &str, port: &Path, frames: &str) -> Box<dyn Amplifier> {
    let text = DEFAULT_CONFIG
        .replace("driver = \"none\"", &format!("driver = \"{driver}\""))
        .replace("port = \"/dev/ttyUSB0\"", &format!("port = \"{}\"", port.display()))
        .replace("timeout_ms = 500", "timeout_ms = 200")
        .replace("attempts = 2", "attempts = 1")
        .replace("\n[amplifier.frames]\n", &format!("\n[amplifier.frames]\n{frames}\n"));
    let text = if frames.is_empty() { text } else { remove_keys(&text, frames) };
    let config = Config::parse(&text, "test").expect("config");
    devices::amplifier(&config.amplifier).expect("driver")
}

/// Drops the default lines of the keys `frames` sets, so they are not
/// given twice.
fn remove_keys(text: &str, frames: &str) -> String {
    let keys: Vec<&str> = frames.lines().filter_map(|l| l.split('=').next()).map(str::trim).collect();
    let mut seen = std::collections::BTreeSet::new();
    text.lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !keys.contains(&key) || seen.insert(key.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn modbus_switches_the_coil_and_confirms_by_reading_it_back() {
    let board = RelayEmulator::start(1).unwrap();
    let mut relay = configured("modbus-rtu", board.path(), "");
    assert_eq!(relay.driver(), "modbus-rtu");
    assert_eq!(relay.state(), AmplifierState::Unknown);
    assert_eq!(relay.switch(Off).await.unwrap(), AmplifierState::Off);
    assert!(!board.coil(0));
    assert_eq!(relay.switch(On).await.unwrap(), AmplifierState::On);
    assert!(board.coil(0), "the board's coil is on");
    assert_eq!(relay.state(), AmplifierState::On);

    let requests = board.requests();
    let bytes: Vec<_> = requests.iter().map(|r| r.bytes.clone()).collect();
    assert_eq!(
        bytes,
        [
            vec![0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA], // write coil 0 OFF
            vec![0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0xFD, 0xCA], // read coil 0
            vec![0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A], // write coil 0 ON
            vec![0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0xFD, 0xCA],
        ]
    );
    assert!(requests.iter().all(|r| r.crc_ok));
    assert!(requests.windows(2).all(|w| w[0].at <= w[1].at), "recorded in order");
    let writes: Vec<_> = board.writes().iter().map(|w| (w.coil, w.on)).collect();
    assert_eq!(writes, [(0, false), (0, true)]);
}

#[tokio::test]
async fn modbus_addresses_the_configured_slave_and_coil() {
    let board = RelayEmulator::start(7).unwrap();
    let mut relay = modbus(&board, 7, 3);
    assert_eq!(relay.switch(On).await.unwrap(), AmplifierState::On);
    assert!(board.coil(3) && !board.coil(0));
    assert_eq!(board.requests()[0].bytes[..6], [0x07, 0x05, 0x00, 0x03, 0xFF, 0x00]);
}

#[tokio::test]
async fn modbus_failures_are_named() {
    for (behaviour, expect) in [
        (Behaviour::Silent, "did not answer within 200 ms"),
        (Behaviour::BadCrc, "answered with a bad CRC: 01 05 00 00 FF 00 8C 60"),
        (Behaviour::Truncated, "garbled or incomplete reply: 01 05 00"),
        (Behaviour::WrongSlave, "reply that does not match the request"),
        (Behaviour::Exception, "refused the request: Modbus exception"),
        (Behaviour::Stuck, "coil 0 reads OFF after switching ON"),
    ] {
        let board = RelayEmulator::start(1).unwrap();
        board.set_behaviour(behaviour);
        let mut relay = modbus(&board, 1, 0);
        let err = relay.switch(On).await.unwrap_err().to_string();
        assert!(err.contains(expect), "{behaviour:?}: {err}");
        assert!(err.contains(&board.path().display().to_string()), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(relay.state(), AmplifierState::Unknown, "{behaviour:?}");

        // The board comes back: the next switch works, on a fresh port.
        board.set_behaviour(Behaviour::Normal);
        assert_eq!(relay.switch(On).await.unwrap(), AmplifierState::On, "{behaviour:?}");
        assert!(board.coil(0));
    }
}

#[tokio::test]
async fn modbus_tries_again_before_giving_up() {
    let board = RelayEmulator::start(1).unwrap();
    board.set_behaviour(Behaviour::Silent);
    let mut relay = ModbusRelay::new(&serial(board.path(), 3), &ModbusConfig::default());
    relay.switch(Off).await.unwrap_err();
    let writes = board.requests().iter().filter(|r| r.bytes[1] == 0x05).count();
    assert_eq!(writes, 3, "three attempts");
}

#[tokio::test]
async fn a_silent_board_does_not_block_the_runtime() {
    // One thread: if the switch blocked it, the timer below could not fire
    // before the switch gave up.
    let board = RelayEmulator::start(1).unwrap();
    board.set_behaviour(Behaviour::Silent);
    let mut relay = modbus(&board, 1, 0);
    let (switched, ticked) = tokio::join!(
        async {
            let _ = relay.switch(On).await;
            Instant::now()
        },
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Instant::now()
        }
    );
    assert!(ticked < switched, "the timer fired while the switch waited");
}

#[tokio::test]
async fn a_missing_port_is_a_clear_error_and_later_switches_retry() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ttyUSB9");
    for driver in ["modbus-rtu", "serial-frames"] {
        let mut relay = configured(driver, &missing, "");
        let err = relay.switch(Off).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot open relay board port {}: ", missing.display())), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = relay.switch(Off).await.unwrap_err().to_string();
        assert!(err.starts_with("cannot open relay board port"), "{err}");
    }
}

#[tokio::test]
async fn lcus_preset_sends_exactly_its_frames() {
    let board = SerialBoard::start().unwrap();
    let mut relay = configured("serial-frames", board.path(), "");
    assert_eq!(relay.switch(On).await.unwrap(), AmplifierState::On);
    assert_eq!(relay.switch(Off).await.unwrap(), AmplifierState::Off);
    dalaba_e2e::wait_for("both frames at the board", Duration::from_secs(5), || async {
        (board.received().len() >= 8).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(board.received(), [0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x01, 0x00, 0xA1]);
}

#[tokio::test]
async fn lcus_channel_is_configurable() {
    let board = SerialBoard::start().unwrap();
    let mut relay = configured("serial-frames", board.path(), "preset = \"lcus-4\"\nchannel = 3");
    relay.switch(On).await.unwrap();
    dalaba_e2e::wait_for("the frame", Duration::from_secs(5), || async { (board.received().len() >= 4).then_some(()) })
        .await
        .unwrap();
    assert_eq!(board.received(), [0xA0, 0x03, 0x01, 0xA4]);
}

#[tokio::test]
async fn custom_frames_and_their_replies_are_checked() {
    let frames =
        "preset = \"custom\"\non = \"55 01 FF\"\noff = \"55 01 00\"\nreply_on = \"AA 01\"\nreply_off = \"AA 00\"";
    let board = SerialBoard::start().unwrap();
    board.reply_to(&[0x55, 0x01, 0xFF], &[0xAA, 0x01]);
    board.reply_to(&[0x55, 0x01, 0x00], &[0xAA, 0x07]);
    let mut relay = configured("serial-frames", board.path(), frames);
    assert_eq!(relay.switch(On).await.unwrap(), AmplifierState::On);
    let err = relay.switch(Off).await.unwrap_err().to_string();
    assert!(err.ends_with("answered AA 07 instead of the expected AA 00"), "{err}");
    assert_eq!(board.received(), [0x55, 0x01, 0xFF, 0x55, 0x01, 0x00]);

    let silent = SerialBoard::start().unwrap();
    let mut relay = configured("serial-frames", silent.path(), frames);
    let err = relay.switch(On).await.unwrap_err().to_string();
    assert!(err.ends_with("did not answer within 200 ms"), "{err}");
}
