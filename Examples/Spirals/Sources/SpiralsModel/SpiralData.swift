import Glibc
import Learning

/// Points on three interleaved spiral arms with Gaussian noise; the label is the arm.
public enum SpiralData {
    public static let arms = 3

    /// `pointsPerArm` points on each arm, in a fixed order drawn from `seed` (the same on every machine).
    public static func generate(pointsPerArm: Int, seed: UInt64) -> Dataset {
        var generator = Xoshiro256(seed: seed)
        var features: [Float] = []
        var labels: [UInt8] = []
        features.reserveCapacity(2 * arms * pointsPerArm)
        for _ in 0..<pointsPerArm {
            for arm in 0..<arms {
                // Radius in 0..1 along the arm; each arm turns 1.5 times and starts a third of a turn on.
                let radius = generator.nextUnit()
                let angle = 3 * Double.pi * radius + 2 * Double.pi * Double(arm) / Double(arms)
                let noise = 0.04
                features.append(Float(radius * cos(angle) + noise * generator.nextNormal()))
                features.append(Float(radius * sin(angle) + noise * generator.nextNormal()))
                labels.append(UInt8(arm))
            }
        }
        return Dataset(images: features, labels: labels, imageHeight: 1, imageWidth: 2)
    }
}
