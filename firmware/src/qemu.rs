//! The QEMU mps2-an386 board: an LED on the FPGA I/O block, "flash" in the upper part of the
//! 4 MiB code memory QEMU maps at 0x0 (past the 512 KiB the linker may use), and a busy-wait
//! delay.
//!
//! The flash obeys NOR rules in software (erase sets bytes to 0xFF, a write can only clear
//! bits, writes and erases must be aligned), so the app sees what a real part would do.

use core::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

/// The mps2 FPGA I/O LED register (bit 0 is LED0).
const FPGAIO_LED: *mut u32 = 0x4002_8000 as *mut u32;
/// Core clock of the mps2-an386, in Hz.
pub const CORE_HZ: u32 = 25_000_000;

/// LED0 of the mps2 board.
#[derive(Debug, Default)]
pub struct Led {
    toggles: u32,
    on: bool,
}

impl Led {
    /// Times the LED changed state.
    #[must_use]
    pub fn toggles(&self) -> u32 {
        self.toggles
    }

    fn set(&mut self, on: bool) {
        if on != self.on {
            self.toggles += 1;
        }
        self.on = on;
        // SAFETY: FPGAIO_LED is the mps2 LED register, a plain 32-bit device register.
        unsafe { FPGAIO_LED.write_volatile(u32::from(on)) };
    }
}

impl PinErrorType for Led {
    type Error = Infallible;
}

impl OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

/// Busy-wait delay at [`CORE_HZ`].
#[derive(Debug, Default)]
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = u64::from(ns) * u64::from(CORE_HZ) / 1_000_000_000;
        cortex_m::asm::delay(cycles.clamp(1, u64::from(u32::MAX)) as u32);
    }
}

/// Start of the flash region.
pub const FLASH_BASE: usize = 0x0030_0000;
/// Its size.
pub const FLASH_SIZE: usize = 256 * 1024;

/// NOR flash in QEMU's code memory: 4 KiB erase blocks, 4-byte writes.
#[derive(Debug)]
pub struct Flash {
    _private: (),
}

impl Flash {
    /// Takes the region at [`FLASH_BASE`]. Its content is whatever was there (QEMU starts
    /// it at 0), like a real part's.
    #[must_use]
    pub fn new() -> Self {
        Flash { _private: () }
    }

    fn check(offset: u32, len: usize, align: usize) -> Result<usize, NorFlashErrorKind> {
        let at = offset as usize;
        if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        if at.checked_add(len).is_none_or(|end| end > FLASH_SIZE) {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        Ok(FLASH_BASE + at)
    }
}

impl Default for Flash {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorType for Flash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let base = Self::check(offset, bytes.len(), Self::READ_SIZE)?;
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: `check` keeps the address inside the flash region, which QEMU maps as
            // memory and nothing else uses.
            *b = unsafe { ((base + i) as *const u8).read_volatile() };
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        FLASH_SIZE
    }
}

impl NorFlash for Flash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let len = (to as usize).checked_sub(from as usize).ok_or(NorFlashErrorKind::OutOfBounds)?;
        let base = Self::check(from, len, Self::ERASE_SIZE)?;
        for i in 0..len {
            // SAFETY: as in `read`.
            unsafe { ((base + i) as *mut u8).write_volatile(0xFF) };
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let base = Self::check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (i, &b) in bytes.iter().enumerate() {
            let p = (base + i) as *mut u8;
            // SAFETY: as in `read`. NOR programming can only clear bits.
            unsafe { p.write_volatile(p.read_volatile() & b) };
        }
        Ok(())
    }
}
