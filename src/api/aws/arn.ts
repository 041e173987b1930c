// Amazon Resource Names in Storage Gateway's form:
//   arn:aws:storagegateway:<region>:<account>:gateway/<gatewayId>
//   <gateway ARN>/volume/<volumeId>          (volumeId = the volume's serial, "vol-" + 8 hex)
//   <gateway ARN>/target/<target iqn>

export class GatewayArns {
  readonly gateway: string;

  constructor(opts: { region: string; accountId: string; gatewayId: string }) {
    this.gateway = `arn:aws:storagegateway:${opts.region}:${opts.accountId}:gateway/${opts.gatewayId}`;
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
    const prefix = this.gateway + kind;
    return arn.startsWith(prefix) && arn.length > prefix.length ? arn.slice(prefix.length) : undefined;
  }
}
