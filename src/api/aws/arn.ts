// Amazon Resource Names in Storage Gateway's form:
//   arn:aws:storagegateway:<region>:<account>:gateway/<gatewayId>
//   <gateway ARN>/volume/<volumeId>          (volumeId = the volume's serial, "vol-" + 8 hex)
//   <gateway ARN>/target/<target iqn>
//   <gateway ARN>/device/AMZN_SGW-<id>_MEDIACHANGER_00001, …_TAPEDRIVE_00001 … _00010
//   arn:aws:storagegateway:<region>:<account>:tape/<barcode>      (tapes belong to the account)
//   arn:aws:storagegateway:<region>:<account>:tapepool/<poolId>

export class GatewayArns {
  readonly gateway: string;
  readonly #account: string;
  readonly #deviceIdPrefix: string;

  constructor(opts: { region: string; accountId: string; gatewayId: string }) {
    this.#account = `arn:aws:storagegateway:${opts.region}:${opts.accountId}`;
    this.gateway = `${this.#account}:gateway/${opts.gatewayId}`;
    this.#deviceIdPrefix = `AMZN_${opts.gatewayId.toUpperCase()}`;
  }

  tape(barcode: string): string {
    return `${this.#account}:tape/${barcode}`;
  }

  tapePool(poolId: string): string {
    return `${this.#account}:tapepool/${poolId}`;
  }

  /** A VTL device: kind MEDIACHANGER or TAPEDRIVE, index 1-based. */
  vtlDevice(kind: 'MEDIACHANGER' | 'TAPEDRIVE', index: number): string {
    return `${this.gateway}/device/${this.#deviceIdPrefix}_${kind}_${String(index).padStart(5, '0')}`;
  }

  /** The barcode of a tape ARN of this account and region, or undefined. */
  tapeBarcodeOf(arn: string): string | undefined {
    return this.#after(arn, `${this.#account}:tape/`);
  }

  tapePoolIdOf(arn: string): string | undefined {
    return this.#after(arn, `${this.#account}:tapepool/`);
  }

  volume(volumeId: string): string {
    return `${this.gateway}/volume/${volumeId}`;
  }

  target(targetName: string): string {
    return `${this.gateway}/target/${targetName}`;
  }

  /** The volume id of one of this gateway's volume ARNs, or undefined. */
  volumeIdOf(arn: string): string | undefined {
    return this.suffixOf(arn, '/volume/');
  }

  /** The target iqn of one of this gateway's target ARNs, or undefined. */
  targetNameOf(arn: string): string | undefined {
    return this.suffixOf(arn, '/target/');
  }

  private suffixOf(arn: string, kind: string): string | undefined {
    return this.#after(arn, this.gateway + kind);
  }

  #after(arn: string, prefix: string): string | undefined {
    return arn.startsWith(prefix) && arn.length > prefix.length ? arn.slice(prefix.length) : undefined;
  }
}
